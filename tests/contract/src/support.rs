//! Test harness: the [`Backend`] trait, test events, recording handlers, helpers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use conveyor::{
    Batch, Context, EventHandler, EventId, HandlerError, HandlerOptions, Item, Outcome, Store,
    WorkerPool,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the suite needs from a backend besides the [`Store`] itself.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The backend's store.
    type S: Store;

    /// A store in `namespace`, on its own connection pool of `connections`.
    async fn store_in(&self, connections: u32, namespace: &str) -> Self::S;

    /// A store in the default namespace, on its own connection pool of `connections`.
    async fn store(&self, connections: u32) -> Self::S {
        self.store_in(connections, conveyor::DEFAULT_NAMESPACE)
            .await
    }

    /// `store` holding idempotency keys for `window` (`with_idempotency_window`).
    fn with_key_window(store: Self::S, window: Duration) -> Self::S;

    /// A handler-side write inside the batch's transaction: inserts `key` into a marker table.
    async fn write_marker(tx: &mut <Self::S as Store>::Tx, key: &str) -> anyhow::Result<()>;

    /// How many markers with `key` are committed.
    async fn count_markers(&self, key: &str) -> anyhow::Result<i64>;

    /// The stored columns of event `id` ([`SELECT_ROW`]), if it exists: what the `Store`
    /// API does not show of a row that is not a dead letter.
    async fn raw_row(&self, id: EventId) -> anyhow::Result<Option<RawRow>>;

    /// The rows of [`ORACLE`](crate::counters::ORACLE) for `namespace`.
    async fn oracle(&self, namespace: &str) -> anyhow::Result<Vec<crate::counters::OracleRow>>;

    /// The stored state of event `id`, failing the test when it does not exist.
    async fn row(&self, id: EventId) -> Row {
        let (status, cancel_reason, last_error, errors) = self
            .raw_row(id)
            .await
            .expect("reading the row")
            .expect("the row exists");
        Row {
            status,
            cancel_reason,
            last_error,
            errors: errors.map_or_else(Vec::new, |e| serde_json::from_str(&e).expect("errors")),
        }
    }
}

/// Reads [`RawRow`] of event `$1` (the same SQL on every backend).
pub const SELECT_ROW: &str = "select cast(status as text), cancel_reason, last_error, \
                              cast(errors as text) from conveyor_events where id = $1";

/// Status, cancel reason, last error and error history (JSON text) of a row.
pub type RawRow = (String, Option<String>, Option<String>, Option<String>);

/// An event's stored state, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `pending`, `claimed`, `delivered`, `dead` or `cancelled`.
    pub status: String,
    /// Why it was cancelled (or its cancel requested).
    pub cancel_reason: Option<String>,
    /// The last error recorded.
    pub last_error: Option<String>,
    /// The error history.
    pub errors: Vec<conveyor::AttemptError>,
}

/// Creates the marker table of [`Backend::write_marker`] (the same SQL on every backend).
pub const CREATE_MARKERS: &str = "create table if not exists contract_markers (key text not null)";
/// Inserts marker `$1`.
pub const INSERT_MARKER: &str = "insert into contract_markers (key) values ($1)";
/// Counts the markers `$1`.
pub const COUNT_MARKERS: &str = "select count(*) from contract_markers where key = $1";

/// The test payload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Job {
    /// Any number up to a million.
    #[garde(range(max = 1_000_000))]
    pub n: u64,
}

impl conveyor::Event for Job {
    const NAME: &'static str = "contract.job";
}

/// A second payload type, for emitted events.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Followup {
    /// The job it follows.
    #[garde(skip)]
    pub of: u64,
}

impl conveyor::Event for Followup {
    const NAME: &'static str = "contract.followup";
}

/// What recording handlers saw, shared with the test.
#[derive(Debug, Clone, Default)]
pub struct Log {
    inner: Arc<Mutex<LogInner>>,
}

#[derive(Debug, Default)]
struct LogInner {
    handled: HashMap<EventId, u32>,
    batches: Vec<Vec<(EventId, u64, String)>>,
    attempts: Vec<(EventId, u32, Instant, Option<String>)>,
}

impl Log {
    /// Record a batch as handled.
    pub fn record(&self, batch: &Batch<Job>) {
        let mut log = self.inner.lock().unwrap();
        let now = Instant::now();
        let mut seen = Vec::new();
        for item in batch {
            *log.handled.entry(item.id).or_default() += 1;
            log.attempts
                .push((item.id, item.attempt, now, item.last_error.clone()));
            seen.push((item.id, item.payload.n, item.fairness_key.clone()));
        }
        log.batches.push(seen);
    }

    /// How many times each event was handled.
    pub fn handled(&self) -> HashMap<EventId, u32> {
        self.inner.lock().unwrap().handled.clone()
    }

    /// How many distinct events were handled.
    pub fn distinct(&self) -> usize {
        self.inner.lock().unwrap().handled.len()
    }

    /// Every batch, in handling order: (id, n, fairness key) per item.
    pub fn batches(&self) -> Vec<Vec<(EventId, u64, String)>> {
        self.inner.lock().unwrap().batches.clone()
    }

    /// Every attempt: (id, attempt number, when, previous error).
    pub fn attempts(&self) -> Vec<(EventId, u32, Instant, Option<String>)> {
        self.inner.lock().unwrap().attempts.clone()
    }
}

/// Records every batch and delivers it, after sleeping `pause` (none by default). `BATCH` is
/// its batch size.
#[derive(Debug, Clone, Default)]
pub struct Recorder<const BATCH: usize> {
    /// What it saw.
    pub log: Log,
    /// How long each batch takes before it is recorded.
    pub pause: Duration,
}

impl<const BATCH: usize> Recorder<BATCH> {
    /// A recorder whose every batch takes `pause`, so batches are in flight for a while.
    pub fn slow(pause: Duration) -> Self {
        Self {
            log: Log::default(),
            pause,
        }
    }
}

#[async_trait]
impl<S: Store, const BATCH: usize> EventHandler<S> for Recorder<BATCH> {
    type Event = Job;
    const BATCH_SIZE: usize = BATCH;

    async fn handle(&self, batch: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        self.log.record(&batch);
        Ok(())
    }
}

/// Handles a batch of up to `BATCH` by calling `F` on each item in turn: for handlers that
/// decide per item (outcomes, emits).
#[derive(Debug)]
pub struct PerItem<F, const BATCH: usize>(pub F);

#[async_trait]
impl<S, F, const BATCH: usize> EventHandler<S> for PerItem<F, BATCH>
where
    S: Store,
    F: Fn(&Item<Job>, &mut Context<'_, S>) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    type Event = Job;
    const BATCH_SIZE: usize = BATCH;

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            (self.0)(item, ctx)?;
        }
        Ok(())
    }
}

/// Start `pool` in the background; cancel the returned token to shut it down.
pub fn spawn<S: Store>(
    pool: WorkerPool<S>,
) -> (CancellationToken, JoinHandle<conveyor::Result<()>>) {
    let token = CancellationToken::new();
    let handle = tokio::spawn(pool.run(token.clone().cancelled_owned()));
    (token, handle)
}

/// Start a pool running just `handler` on `store` (see [`spawn`]).
pub fn spawn_one<S: Store, H: EventHandler<S>>(
    store: &S,
    handler: H,
) -> (CancellationToken, JoinHandle<conveyor::Result<()>>) {
    spawn(
        WorkerPool::builder(store.clone())
            .register(handler)
            .build()
            .expect("a valid pool"),
    )
}

/// Start a pool running just `handler` with `options` on `store` (see [`spawn`]).
pub fn spawn_with<S: Store, H: EventHandler<S>>(
    store: &S,
    handler: H,
    options: HandlerOptions,
) -> (CancellationToken, JoinHandle<conveyor::Result<()>>) {
    spawn(
        WorkerPool::builder(store.clone())
            .register_with(handler, options)
            .build()
            .expect("a valid pool"),
    )
}

/// `n` jobs in fairness group `group`.
pub fn grouped(group: &str, n: u64) -> Vec<conveyor::Message<Job>> {
    (0..n)
        .map(|i| conveyor::Message::new(Job { n: i }).fairness_key(group))
        .collect()
}

/// Run a pool of just `handler` on `store` until the stats of the [`job_queue`] pass `done`
/// (failing the test after 20 s, waiting for `what`), then shut it down.
pub async fn run_until<S: Store, H: EventHandler<S>>(
    store: &S,
    handler: H,
    what: &str,
    done: impl Fn(&conveyor::QueueStats) -> bool,
) {
    let running = spawn_one(store, handler);
    let queue = job_queue();
    eventually(Duration::from_secs(20), what, || async {
        done(&stats_of(store, &queue).await)
    })
    .await;
    stop(running).await;
}

/// Shut down a pool started with [`spawn`] and wait for it.
pub async fn stop(running: (CancellationToken, JoinHandle<conveyor::Result<()>>)) {
    running.0.cancel();
    running.1.await.expect("pool task").expect("pool run");
}

/// Poll `check` every 20 ms until it holds, failing the test after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stats row of `queue`'s events, or zeros.
pub async fn stats_of<S: Store>(store: &S, queue: &conveyor::Queue) -> conveyor::QueueStats {
    store
        .stats()
        .await
        .expect("stats")
        .into_iter()
        .find(|s| &s.queue == queue)
        .unwrap_or(conveyor::QueueStats {
            queue: queue.clone(),
            pending: 0,
            due: 0,
            scheduled: 0,
            waiting: 0,
            parked_keys: 0,
            in_flight: 0,
            retrying: 0,
            dead: 0,
            delivered: 0,
            cancelled: 0,
            enqueued_total: 0,
            completed_total: 0,
            failed_total: 0,
            dead_total: 0,
            oldest_due_age_secs: 0.0,
            paused: false,
            max_in_flight: None,
        })
}

/// Claim up to `limit` events of `queue` for `worker` with a 30 s lease, from the first
/// fairness group.
pub async fn claim<S: Store>(
    store: &S,
    queue: &conveyor::Queue,
    worker: &str,
    limit: usize,
) -> Vec<conveyor::ClaimedEvent> {
    store
        .claim(conveyor::ClaimRequest {
            queue,
            worker,
            limit,
            lease: Duration::from_secs(30),
            fairness_cursor: "",
            priority_aging: Duration::from_secs(60),
        })
        .await
        .expect("claim")
}

/// Complete `outcomes` of events held by `worker`, emitting nothing.
pub async fn complete<S: Store>(store: &S, worker: &str, outcomes: Vec<(EventId, Outcome)>) {
    let completion = conveyor::Completion {
        worker: worker.into(),
        outcomes,
        emitted: vec![],
        delete_delivered: false,
    };
    store.complete(None, &completion).await.expect("complete");
}

/// The queue of [`Job`]s without a routing key.
pub fn job_queue() -> conveyor::Queue {
    conveyor::Queue::new(<Job as conveyor::Event>::NAME, None)
}

/// Jobs `0..n`.
pub fn jobs(n: u64) -> Vec<Job> {
    (0..n).map(|n| Job { n }).collect()
}

/// Publish jobs `0..n` on `store`; their ids, in order.
pub async fn publish_jobs<S: Store>(store: &S, n: u64) -> Vec<EventId> {
    let report = store.publish_batch(jobs(n)).await.expect("publish");
    report.inserted().collect()
}

/// Install a test subscriber once (`RUST_LOG` picks the level).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
