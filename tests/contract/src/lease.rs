//! Leases: crash recovery through the reaper, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError, HandlerOptions, Store, WorkerPool};
use tokio::sync::Notify;

use crate::support::{
    eventually, job_queue, jobs, spawn, spawn_with, stats_of, stop, Backend, Job, Recorder,
};

const WAIT: Duration = Duration::from_secs(20);

/// Starts its batch, says so, then hangs forever (until its worker is killed).
struct Hang {
    started: Arc<Notify>,
}

#[async_trait]
impl<S: Store> EventHandler<S> for Hang {
    type Event = Job;
    const BATCH_SIZE: usize = 10;
    const CLAIM_TIMEOUT: Duration = Duration::from_secs(1);

    async fn handle(&self, _: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        self.started.notify_one();
        std::future::pending().await
    }
}

/// A worker killed mid-batch (no cleanup, no heartbeat) loses nothing: once the lease
/// expires the reaper returns the events and another pool handles them, attempt counted.
pub async fn events_of_a_killed_worker_are_reclaimed_after_the_lease<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish_batch(jobs(5)).await.unwrap();
    let started = Arc::new(Notify::new());
    let doomed = WorkerPool::builder(b.store(4).await)
        .register(Hang {
            started: started.clone(),
        })
        .build()
        .unwrap();
    let killed = tokio::spawn(doomed.run(std::future::pending()));
    started.notified().await;
    killed.abort(); // like kill -9: nothing runs after this point
    let _ = killed.await;
    assert_eq!(stats_of(&store, &job_queue()).await.in_flight, 5);

    // a recorder with the same short lease as `Hang`
    let survivor = Recorder::<10>::default();
    let log = survivor.log.clone();
    let short_lease = HandlerOptions::default().claim_timeout(Duration::from_secs(1));
    let pool = WorkerPool::builder(store.clone())
        .register_with(survivor, short_lease)
        .maintenance_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let running = spawn(pool);
    eventually(WAIT, "reclaimed events handled", || async {
        stats_of(&store, &job_queue()).await.delivered == 5
    })
    .await;
    stop(running).await;
    let attempts = log.attempts();
    assert_eq!(attempts.len(), 5, "each handled once by the survivor");
    for (_, attempt, _, last_error) in attempts {
        assert_eq!(attempt, 2, "the killed attempt counts");
        assert!(last_error.unwrap().contains("lease expired"));
    }
}

/// Graceful shutdown finishes in-flight batches and leaves nothing claimed.
pub async fn graceful_shutdown_finishes_in_flight_and_leaves_nothing_claimed<B: Backend>(b: &B) {
    let store = b.store(8).await;
    store.publish_batch(jobs(100)).await.unwrap();
    // takes a while per batch, so shutdown finds batches in flight
    let handler = Recorder::<5>::slow(Duration::from_millis(300));
    let log = handler.log.clone();
    let running = spawn_with(&store, handler, HandlerOptions::default().concurrency(3));
    eventually(WAIT, "batches in flight", || async {
        stats_of(&store, &job_queue()).await.in_flight > 0
    })
    .await;
    stop(running).await;
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!(s.in_flight, 0, "nothing left claimed");
    assert_eq!(
        s.delivered as usize,
        log.distinct(),
        "every started batch was completed"
    );
    assert_eq!(s.pending + s.delivered, 100, "nothing lost");
}

/// When draining outlasts the shutdown timeout, running batches are aborted and their
/// events released at once (not after the lease), with the attempt counted.
pub async fn shutdown_timeout_releases_running_batches<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish_batch(jobs(3)).await.unwrap();
    let started = Arc::new(Notify::new());
    let pool = WorkerPool::builder(store.clone())
        .register(Hang {
            started: started.clone(),
        })
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let running = spawn(pool);
    started.notified().await;
    stop(running).await;
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!(
        (s.in_flight, s.pending, s.due),
        (0, 3, 3),
        "released and due now"
    );
    assert_eq!(s.retrying, 3, "the aborted attempt counts");
}
