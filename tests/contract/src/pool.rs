//! The worker pool end to end: exactly-once across pools, fair draining, wake-up, registration.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError, HandlerOptions, Store, WorkerPool};
use tokio::sync::mpsc;

use crate::support::{
    eventually, grouped, job_queue, jobs, spawn, spawn_one, spawn_with, stats_of, stop, Backend,
    Job, Recorder,
};

/// Several pools, each on its own connection pool and task, drain 20,000 events: every
/// event is handled exactly once and none is left.
pub async fn pools_drain_20000_events_exactly_once<B: Backend>(b: &B) {
    let store = b.store(4).await;
    for chunk in jobs(20_000).chunks(5_000) {
        store.publish_batch(chunk.to_vec()).await.unwrap();
    }
    let handler = Recorder::<50>::default();
    let log = handler.log.clone();
    let mut pools = Vec::new();
    for _ in 0..3 {
        let pool = WorkerPool::builder(b.store(6).await)
            .register_with(handler.clone(), HandlerOptions::default().concurrency(3))
            .build()
            .unwrap();
        pools.push(spawn(pool));
    }
    eventually(
        Duration::from_secs(120),
        "20,000 events drained",
        || async {
            log.distinct() == 20_000 && stats_of(&store, &job_queue()).await.delivered == 20_000
        },
    )
    .await;
    for running in pools {
        stop(running).await;
    }
    let handled = log.handled();
    assert_eq!(handled.len(), 20_000);
    let twice: Vec<_> = handled.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!((s.pending, s.in_flight, s.dead), (0, 0, 0));
}

/// With 20,000 pending in group A and 50 in group B, all of B completes within the first
/// few batches.
pub async fn small_group_is_not_starved_by_a_large_backlog<B: Backend>(b: &B) {
    let store = b.store(6).await;
    for _ in 0..4 {
        store.publish_batch(grouped("a", 5_000)).await.unwrap();
    }
    store.publish_batch(grouped("b", 50)).await.unwrap();
    let handler = Recorder::<100>::default();
    let log = handler.log.clone();
    let running = spawn_one(&store, handler);
    eventually(Duration::from_secs(30), "all of group b", || async {
        log.batches()
            .iter()
            .flatten()
            .filter(|(_, _, g)| g == "b")
            .count()
            == 50
    })
    .await;
    stop(running).await;
    let batches = log.batches();
    let last_b = batches
        .iter()
        .rposition(|batch| batch.iter().any(|(_, _, g)| g == "b"))
        .unwrap();
    assert!(
        last_b < 2,
        "group b finished in batch {} of {}",
        last_b + 1,
        batches.len()
    );
}

/// Polls only once a minute; must be woken by the publish itself.
#[derive(Debug)]
struct Sleepy {
    started: mpsc::UnboundedSender<Instant>,
}

#[async_trait]
impl<S: Store> EventHandler<S> for Sleepy {
    type Event = Job;
    const POLL_INTERVAL: Duration = Duration::from_secs(60);

    async fn handle(&self, _: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        let _ = self.started.send(Instant::now());
        Ok(())
    }
}

/// An idle pool starts a published event well within its (one minute) poll interval.
pub async fn idle_pool_is_woken_by_a_publish<B: Backend>(b: &B) {
    let store = b.store(6).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = spawn_one(&store, Sleepy { started: tx });
    // let the worker find the queue empty and go idle, and the listener subscribe
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    for n in 0..5 {
        let published = Instant::now();
        store.publish(Job { n }).await.unwrap();
        let started = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("woken well before the 60 s poll")
            .unwrap();
        latencies.push(started - published);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(running).await;
    let worst = latencies.iter().max().unwrap();
    assert!(
        *worst < Duration::from_secs(1),
        "wake-up latencies {latencies:?}"
    );
}

/// Two handlers of one queue are a `build()` error naming both, never a panic; different
/// routing keys of one type do not conflict.
pub async fn conflicting_registration_is_a_build_error<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let err = WorkerPool::builder(store.clone())
        .register(Recorder::<1>::default())
        .register(Recorder::<5>::default())
        .build()
        .unwrap_err();
    assert!(matches!(err, conveyor::Error::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("contract.job"), "{err}");

    struct Raw;
    #[async_trait]
    impl<S: Store> EventHandler<S> for Raw {
        type Event = Job;
        const ROUTING_KEY: Option<&'static str> = Some("raw");
        async fn handle(&self, _: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
            Ok(())
        }
    }
    WorkerPool::builder(store)
        .register(Recorder::<1>::default())
        .register(Raw)
        .build()
        .expect("a routing key makes a different queue");
}

/// `HandlerOptions` override the handler's constants: a `BATCH_SIZE = 1` handler registered
/// with `batch_size(10)` gets batches of 10, and a zero override is a build error naming it.
pub async fn handler_options_override_the_handler_constants<B: Backend>(b: &B) {
    let store = b.store(8).await;
    let err = WorkerPool::builder(store.clone())
        .register_with(
            Recorder::<1>::default(),
            HandlerOptions::default().batch_size(0),
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("batch size"), "{err}");

    store.publish_batch(jobs(30)).await.unwrap();
    let recorder = Recorder::<1>::default();
    let log = recorder.log.clone();
    let options = HandlerOptions::default()
        .batch_size(10)
        .poll_interval(Duration::from_secs(5))
        .claim_timeout(Duration::from_secs(5));
    let running = spawn_with(&store, recorder, options);
    eventually(Duration::from_secs(10), "30 jobs handled", || {
        let log = log.clone();
        async move { log.distinct() == 30 }
    })
    .await;
    stop(running).await;
    let sizes: Vec<usize> = log.batches().iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        vec![10, 10, 10],
        "one worker, 30 due jobs, batches of 10"
    );
}
