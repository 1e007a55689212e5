//! Activity: per-queue wait and run percentiles, completed and failed events per minute,
//! and live worker pools, as every pool's heartbeat records them.

use std::time::Duration;

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError, QueueActivity, Store, WorkerPool};

use crate::support::{
    eventually, job_queue, jobs, spawn, stats_of, stop, Backend, Job, Log, Recorder,
};

const WAIT: Duration = Duration::from_secs(20);
/// A short heartbeat, so the tests see each pool's rows within a fraction of a second.
const BEAT: Duration = Duration::from_millis(100);

/// Fails every attempt, retried quickly, dead after the third.
struct Failing {
    log: Log,
}

#[async_trait]
impl<S: Store> EventHandler<S> for Failing {
    type Event = Job;
    const MAX_RETRIES: u32 = 2;

    async fn handle(&self, batch: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        self.log.record(&batch);
        Err(HandlerError::retry("downstream unavailable"))
    }

    fn backoff(&self, _: u32) -> Duration {
        Duration::from_millis(50)
    }
}

/// A pool of `handler` alone on `store`, with the short heartbeat.
fn beating<S: Store, H: EventHandler<S>>(store: S, handler: H) -> WorkerPool<S> {
    WorkerPool::builder(store)
        .register(handler)
        .heartbeat_interval(BEAT)
        .build()
        .unwrap()
}

/// The activity of the job queue.
async fn job_activity<S: Store>(store: &S) -> QueueActivity {
    let mut all = store.activity(Some(&job_queue())).await.expect("activity");
    assert_eq!(all.len(), 1, "one entry for the queue asked for");
    all.remove(0)
}

fn completed(a: &QueueActivity) -> u64 {
    a.per_minute.iter().map(|m| m.completed).sum()
}

fn failed(a: &QueueActivity) -> u64 {
    a.per_minute.iter().map(|m| m.failed).sum()
}

/// A pool whose handler takes ~50 ms: its run time's median is in a loose band around it,
/// every claimed event has a wait sample, the completed counts per minute add up to the
/// events handled, and the last counts are written at shutdown.
pub async fn activity_reports_wait_run_and_completed_per_minute<B: Backend>(b: &B) {
    let store = b.store(6).await;
    let before = job_activity(&store).await;
    assert_eq!(before.workers, 0);
    assert_eq!(before.run.p50, None, "no samples yet");
    assert_eq!(before.per_minute.len(), 60);
    store.publish_batch(jobs(20)).await.unwrap();
    // takes about 50 ms per batch of up to 5
    let sleepy = Recorder::<5>::slow(Duration::from_millis(50));
    let log = sleepy.log.clone();
    let running = spawn(beating(b.store(4).await, sleepy));
    eventually(WAIT, "20 completions recorded", || async {
        completed(&job_activity(&store).await) == 20
    })
    .await;
    let a = job_activity(&store).await;
    assert_eq!(log.distinct(), 20);
    assert_eq!(a.workers, 1, "one live pool");
    let p50 = a.run.p50.expect("run samples");
    assert!((0.040..2.0).contains(&p50), "run p50 {p50} s");
    assert!(a.run.p95.is_some() && a.run.p99.is_some());
    assert_eq!(a.run.samples, 20, "one run sample per event");
    assert_eq!(a.wait.samples, 20, "one wait sample per claimed event");
    assert!(a.wait.p50.is_some() && a.wait.p99.is_some());
    assert_eq!(failed(&a), 0);
    stop(running).await;

    let after = job_activity(&store).await;
    assert_eq!(after.workers, 0, "a cleanly stopped pool removes its row");
    assert_eq!(completed(&after), 20, "the counts outlive the pool");
    assert!(store.workers().await.unwrap().is_empty());
    let listed = store.activity(None).await.unwrap();
    assert!(listed.iter().any(|q| q.queue == job_queue()), "{listed:?}");
}

/// A failing handler's attempts are counted as failed, each one.
pub async fn failed_attempts_are_counted_per_minute<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish_batch(jobs(4)).await.unwrap();
    let log = Log::default();
    let running = spawn(beating(b.store(4).await, Failing { log: log.clone() }));
    eventually(WAIT, "every event dead", || async {
        stats_of(&store, &job_queue()).await.dead == 4
    })
    .await;
    stop(running).await;
    let attempts = log.attempts().len() as u64;
    assert_eq!(attempts, 12, "3 attempts each");
    let a = job_activity(&store).await;
    assert_eq!(failed(&a), attempts, "every failed attempt counted");
    assert_eq!(completed(&a), 0);
}

/// `workers` counts the live pools serving a queue: 1, then 2; a clean shutdown removes
/// its pool at once, a killed pool's row goes stale after 3 heartbeat intervals.
pub async fn live_workers_count_pools_until_they_stop_or_go_stale<B: Backend>(b: &B) {
    let store = b.store(4).await;
    let pool = |store| beating(store, Recorder::<10>::default());
    let first = spawn(pool(b.store(4).await));
    eventually(WAIT, "one live pool", || async {
        job_activity(&store).await.workers == 1
    })
    .await;
    let second = pool(b.store(4).await);
    let second_id = second.id().to_owned();
    let killed = tokio::spawn(second.run(std::future::pending()));
    eventually(WAIT, "two live pools", || async {
        job_activity(&store).await.workers == 2
    })
    .await;
    let listed = store.workers().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|w| w.live && w.queues == [job_queue()]));
    assert!(listed.iter().all(|w| w.pid == std::process::id()));

    stop(first).await;
    assert_eq!(
        job_activity(&store).await.workers,
        1,
        "clean shutdown: gone at once"
    );
    killed.abort(); // like kill -9: no last heartbeat, the row stays
    let _ = killed.await;
    eventually(WAIT, "the killed pool goes stale", || async {
        job_activity(&store).await.workers == 0
    })
    .await;
    let listed = store.workers().await.unwrap();
    assert_eq!(listed.len(), 1, "a stale row is listed until pruned");
    assert_eq!(listed[0].pool_id, second_id);
    assert!(!listed[0].live);
}

/// A zero heartbeat interval is a build error naming it.
pub async fn a_zero_heartbeat_interval_is_a_build_error<B: Backend>(b: &B) {
    let built = WorkerPool::builder(b.store(2).await)
        .register(Recorder::<10>::default())
        .heartbeat_interval(Duration::ZERO)
        .build();
    let err = built.expect_err("zero heartbeat").to_string();
    assert!(err.contains("heartbeat_interval"), "{err}");
}
