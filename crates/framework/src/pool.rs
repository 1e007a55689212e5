//! [`WorkerPool`]: runs every registered handler's workers until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::activity::{Heartbeat, QueueTally};
use crate::error::{Error, Result};
use crate::event::Queue;
use crate::hooks::{AsyncHook, HookFailures, Hooks, SyncHook};
use crate::lease::Maintenance;
use crate::middleware::{Chain, Middleware};
use crate::periodic::{self, Periodic};
use crate::runner::Runner;
use crate::shutdown::Shutdown;
use crate::store::{QueueSettings, Store, WorkerInfo};
use crate::wake::Wakers;
use crate::worker::{Spec, Worker};

mod builder;

/// Connections a pool needs besides one per worker: the listener, heartbeats, maintenance.
const RESERVED_CONNECTIONS: u32 = 4;

pub use builder::{HandlerOptions, PoolBuilder};

/// A registered handler.
pub(crate) struct Registration<S: Store> {
    pub(crate) spec: Arc<Spec>,
    pub(crate) runner: Arc<dyn Runner<S>>,
    pub(crate) concurrency: usize,
    /// The handler's own middleware (inside the pool's).
    pub(crate) middleware: Chain,
}

/// The hooks registered on a pool, and the count of their failures.
#[derive(Clone, Default)]
pub(crate) struct HookSet {
    pub(crate) sync: Vec<SyncHook>,
    pub(crate) asyncs: Vec<AsyncHook>,
    pub(crate) failures: HookFailures,
}

impl std::fmt::Debug for HookSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSet")
            .field("sync", &self.sync.len())
            .field("async", &self.asyncs.len())
            .field("failures", &self.failures)
            .finish()
    }
}

/// Pool-wide settings (see [`PoolBuilder`] for each default).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    pub(crate) shutdown_timeout: Duration,
    pub(crate) maintenance: Maintenance,
    /// How often the pool records itself and its activity ([`PoolBuilder::heartbeat_interval`]).
    pub(crate) heartbeat: Duration,
}

/// Runs the workers of every registered handler: claiming, handling, completing, with
/// wake-ups, lease heartbeats, a reaper for expired claims and a pruner for delivered rows,
/// and publishes its [`Periodic`] events on schedule.
///
/// Build one with [`WorkerPool::builder`]; run it with [`run`](Self::run).
pub struct WorkerPool<S: Store> {
    store: S,
    handlers: Vec<Registration<S>>,
    periodic: Vec<Periodic>,
    config: PoolConfig,
    id: String,
    hooks: HookSet,
    middleware: Chain,
}

impl<S: Store> std::fmt::Debug for WorkerPool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("id", &self.id)
            .field("namespace", &self.store.namespace())
            .field("queues", &self.queues().collect::<Vec<_>>())
            .field("periodic", &self.periodic)
            .field("config", &self.config)
            .field("hooks", &self.hooks)
            .field("middleware", &self.middleware)
            .finish()
    }
}

impl<S: Store> WorkerPool<S> {
    /// Start building a pool over `store`.
    pub fn builder(store: S) -> PoolBuilder<S> {
        PoolBuilder::new(store)
    }

    /// The queues this pool's handlers consume.
    pub fn queues(&self) -> impl Iterator<Item = &Queue> {
        self.handlers.iter().map(|h| &h.spec.queue)
    }

    /// Record every handler's subscription in the database (see
    /// [`EventHandler::SUBSCRIPTION`](crate::EventHandler::SUBSCRIPTION)), with its queue's
    /// ordering and limit settings ([`QueueSettings`]: `KEY_CONCURRENCY`, `ON_DEAD_HEAD`,
    /// `MAX_IN_FLIGHT`), as [`run`](Self::run) does when it starts: call it at deploy time to
    /// have a new subscription receive copies before its first process starts. Logs a warning
    /// for a subscription another handler type recorded last (the two would split its events).
    ///
    /// # Errors
    /// Database errors.
    pub async fn subscribe(&self) -> Result<()> {
        record(&self.store, &self.subscriptions()).await
    }

    /// Each handler's queue (its subscription), type name and queue settings.
    fn subscriptions(&self) -> Vec<(Queue, &'static str, QueueSettings)> {
        self.handlers
            .iter()
            .map(|h| (h.spec.queue.clone(), h.spec.name, h.spec.settings))
            .collect()
    }

    /// How often this pool's hooks panicked, timed out or had records dropped: a handle
    /// that keeps counting while the pool runs (take it before [`run`](Self::run)).
    pub fn hook_failures(&self) -> HookFailures {
        self.hooks.failures.clone()
    }

    /// This pool's id, the prefix of every `claimed_by` it writes.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The store the pool works on.
    #[cfg(feature = "testing")]
    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    /// Run until `shutdown` completes, then shut down gracefully: stop claiming, let running
    /// batches finish (for up to the shutdown timeout, then release them), and return.
    /// Nothing claimed is lost either way.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run(pool: conveyor::WorkerPool<conveyor::PgStore>) -> conveyor::Result<()> {
    /// let token = tokio_util::sync::CancellationToken::new();
    /// pool.run(token.clone().cancelled_owned()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Task`] if a worker task panicked (a bug; its events are reaped).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let wakers = Wakers::new(self.queues().cloned());
        let signals = Shutdown::default();
        let background = CancellationToken::new();
        let mut hook_tasks = JoinSet::new();
        let hooks = Hooks::start(
            self.hooks.sync.clone(),
            &self.hooks.asyncs,
            self.hooks.failures.clone(),
            &mut hook_tasks,
        );
        let mut tasks = JoinSet::new();
        tasks.spawn(
            wakers
                .clone()
                .listen(self.store.clone(), background.clone()),
        );
        tasks.spawn(self.config.maintenance.run(
            self.store.clone(),
            wakers.clone(),
            hooks.clone(),
            background.clone(),
        ));
        for schedule in &self.periodic {
            tasks.spawn(periodic::run(
                self.store.clone(),
                schedule.clone(),
                hooks.clone(),
                signals.stop_claiming.clone(),
            ));
        }

        if let Err(e) = self.subscribe().await {
            // the workers still run what is stored; copies for a new subscription start
            // once it is recorded
            tracing::warn!(pool = %self.id, error = %e, "recording subscriptions failed; retrying every second");
            tasks.spawn(self.resubscribe(background.clone()));
        }

        let tallies: Vec<Arc<QueueTally>> =
            self.queues().map(|q| QueueTally::new(q.clone())).collect();
        tasks.spawn(
            self.heartbeat(tallies.clone())
                .run(self.store.clone(), background.clone()),
        );

        let mut workers = JoinSet::new();
        for (reg, tally) in self.handlers.iter().zip(&tallies) {
            let middleware: Arc<[Arc<dyn Middleware>]> = self
                .middleware
                .0
                .iter()
                .chain(&reg.middleware.0)
                .cloned()
                .collect();
            for n in 0..reg.concurrency {
                workers.spawn(
                    Worker {
                        id: format!("{}/{}/{n}", self.id, reg.spec.queue),
                        store: self.store.clone(),
                        runner: reg.runner.clone(),
                        spec: reg.spec.clone(),
                        wake: wakers.subscribe(&reg.spec.queue),
                        shutdown: signals.clone(),
                        delete_delivered: self.config.maintenance.retention.is_zero(),
                        hooks: hooks.clone(),
                        middleware: middleware.clone(),
                        tally: tally.clone(),
                    }
                    .run(),
                );
            }
        }
        tracing::info!(pool = %self.id, namespace = self.store.namespace(), workers = workers.len(), "worker pool started");
        // each worker may hold its batch's transaction while a heartbeat needs another
        // connection; the listener holds one and maintenance borrows one
        let needed = workers.len() as u32 + RESERVED_CONNECTIONS;
        if let Some(limit) = self.store.connection_limit().filter(|l| *l < needed) {
            tracing::warn!(pool = %self.id, limit, needed, "connection pool smaller than workers + {RESERVED_CONNECTIONS}: heartbeats and claims may wait for connections");
        }

        let mut failure = None;
        tokio::pin!(shutdown);
        tokio::select! {
            () = &mut shutdown => {}
            Some(joined) = workers.join_next() => {
                // workers only return on shutdown: one that ended early panicked
                failure = joined.err().map(|e| Error::Task(e.to_string()));
            }
        }
        tracing::info!(pool = %self.id, "shutting down: draining in-flight batches");
        signals.stop_claiming.cancel();
        let drained = tokio::time::timeout(
            self.config.shutdown_timeout,
            drain(&mut workers, &mut failure),
        )
        .await;
        if drained.is_err() {
            tracing::warn!(pool = %self.id, timeout = ?self.config.shutdown_timeout, "shutdown timed out; releasing in-flight batches");
            signals.abort.cancel();
            drain(&mut workers, &mut failure).await;
        }
        background.cancel();
        while tasks.join_next().await.is_some() {}
        // the last records: async hooks finish their queues, within the shutdown timeout
        drop(hooks);
        let flushed = tokio::time::timeout(self.config.shutdown_timeout, async {
            while hook_tasks.join_next().await.is_some() {}
        })
        .await;
        if flushed.is_err() {
            tracing::warn!(pool = %self.id, "async hooks still had records at the shutdown timeout; dropped");
        }
        tracing::info!(pool = %self.id, "worker pool stopped");
        failure.map_or(Ok(()), Err)
    }
}

impl<S: Store> WorkerPool<S> {
    /// The heartbeat that records this pool and its queues' `tallies`.
    fn heartbeat(&self, tallies: Vec<Arc<QueueTally>>) -> Heartbeat {
        let now = chrono::Utc::now();
        Heartbeat {
            worker: WorkerInfo {
                pool_id: self.id.clone(),
                host: builder::hostname(),
                pid: std::process::id(),
                queues: self.queues().cloned().collect(),
                started_at: now,
                last_seen: now,
                heartbeat_ms: u64::try_from(self.config.heartbeat.as_millis()).unwrap_or(u64::MAX),
                live: true,
            },
            interval: self.config.heartbeat,
            tallies,
        }
    }

    /// Retry [`subscribe`](Self::subscribe) every second until it succeeds or `stop`.
    fn resubscribe(&self, stop: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        let store = self.store.clone();
        let subs = self.subscriptions();
        async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if record(&store, &subs).await.is_ok() {
                    tracing::info!("subscriptions recorded");
                    return;
                }
            }
        }
    }
}

/// Record each `(queue, handler)` subscription and its queue settings, warning where another
/// handler type recorded it last.
async fn record<S: Store>(store: &S, subs: &[(Queue, &'static str, QueueSettings)]) -> Result<()> {
    for (queue, handler, settings) in subs {
        store.configure(queue, settings).await?;
        let before = store.subscribe(queue, handler).await?;
        if let Some(other) = before.filter(|b| b != handler) {
            tracing::warn!(%queue, handler, other, "another handler type recorded this subscription last: if both run, they split its events; give one a SUBSCRIPTION of its own");
        }
    }
    Ok(())
}

async fn drain(workers: &mut JoinSet<()>, failure: &mut Option<Error>) {
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            failure.get_or_insert(Error::Task(e.to_string()));
        }
    }
}
