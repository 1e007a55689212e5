//! Global concurrency limits (`MAX_IN_FLIGHT`) across pools, and bad ordering or limit
//! settings.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::{
    Batch, Context, EventHandler, HandlerError, HandlerOptions, Message, Store, WorkerPool,
};

use crate::ordering::{Sequencer, WAIT};
use crate::support::{eventually, job_queue, spawn_with, stats_of, stop, Backend, Job};

/// Counts events running at once across every pool, and the most seen.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

#[async_trait]
impl<S: Store> EventHandler<S> for Gauge {
    type Event = Job;
    const BATCH_SIZE: usize = 3;
    const MAX_IN_FLIGHT: Option<u32> = Some(5);

    async fn handle(&self, batch: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        let now = self.now.fetch_add(batch.len(), Ordering::SeqCst) + batch.len();
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.now.fetch_sub(batch.len(), Ordering::SeqCst);
        self.done.fetch_add(batch.len(), Ordering::SeqCst);
        Ok(())
    }
}

/// A queue limited to 5 in flight never has more claimed, with 3 pools of 4 workers each
/// taking batches of 3 (up to 36 at once without the limit): sampled through the store's
/// stats during the run, and counted in the handler.
pub async fn the_global_limit_is_never_exceeded_across_pools<B: Backend>(b: &B) {
    let store = b.store(4).await;
    store
        .publish_batch((0..300).map(|n| Job { n }))
        .await
        .unwrap();
    let handler = Gauge::default();
    let mut pools = Vec::new();
    for _ in 0..3 {
        pools.push(spawn_with(
            &b.store(6).await,
            handler.clone(),
            HandlerOptions::default().concurrency(4),
        ));
    }
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (store, stop_sampling) = (store.clone(), stop_sampling.clone());
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop_sampling.load(Ordering::SeqCst) {
                let s = stats_of(&store, &job_queue()).await;
                peak = peak.max(s.in_flight);
                // the pools record the limit as they start, before they claim
                assert!(
                    s.max_in_flight == Some(5) || (s.max_in_flight.is_none() && s.in_flight == 0),
                    "{s:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak
        })
    };
    eventually(WAIT, "300 delivered", || async {
        handler.done.load(Ordering::SeqCst) == 300
    })
    .await;
    stop_sampling.store(true, Ordering::SeqCst);
    let sampled = sampler.await.unwrap();
    for running in pools {
        stop(running).await;
    }
    let peak = handler.peak.load(Ordering::SeqCst);
    assert!(peak <= 5, "{peak} ran at once");
    assert!(sampled <= 5, "{sampled} claimed at once");
    assert!(
        peak >= 3,
        "the limit, not the workers, bounded it: peak {peak}"
    );
    assert_eq!(stats_of(&store, &job_queue()).await.delivered, 300);
}

/// Two events in flight at most, batches of 4, 4 workers, a poll interval of 60 s: a claim
/// gets at most 2 (not a full batch, so its worker waits for a wake-up afterwards) and the
/// others find the limit reached and come back empty, so the queue drains only because
/// freeing a slot wakes the queue's workers (a completion publishes nothing else that
/// would); without that, every worker waits out the 60 s after its first batch.
pub async fn freeing_a_slot_wakes_the_limited_queue<B: Backend>(b: &B) {
    let store = b.store(8).await;
    store
        .publish_batch((0..40).map(|n| Job { n }))
        .await
        .unwrap();
    let handler = Gauge::default();
    let running = spawn_with(
        &store,
        handler.clone(),
        HandlerOptions::default()
            .concurrency(4)
            .batch_size(4)
            .poll_interval(Duration::from_secs(60))
            .max_in_flight(Some(2)),
    );
    eventually(
        Duration::from_secs(20),
        "40 delivered without waiting for a poll",
        || async { handler.done.load(Ordering::SeqCst) == 40 },
    )
    .await;
    stop(running).await;
    assert!(handler.peak.load(Ordering::SeqCst) <= 2);
}

/// An empty or over-long ordering key is refused at publish, naming the field; a zero key
/// concurrency or global limit is refused at build.
pub async fn bad_ordering_settings_are_refused<B: Backend>(b: &B) {
    let store = b.store(2).await;
    for key in [String::new(), "k".repeat(257)] {
        let err = store
            .publish(Message::new(Job { n: 1 }).ordering_key(key))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ordering_key"), "{err}");
    }
    for options in [
        HandlerOptions::default().key_concurrency(0),
        HandlerOptions::default().max_in_flight(Some(0)),
        HandlerOptions::default().max_in_flight(Some(10_001)),
    ] {
        let err = WorkerPool::builder(store.clone())
            .register_with(Sequencer::default(), options)
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("key_concurrency") || text.contains("max_in_flight"),
            "{text}"
        );
    }
}
