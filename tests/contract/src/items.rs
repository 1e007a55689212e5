//! Concurrency inside a batch: `items::for_each_concurrent` runs at most its bound of items
//! at once, and every item's outcome and emits land as that item said.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::items::{for_each_concurrent, ItemOutcome};
use conveyor::{Batch, Context, EventHandler, HandlerError, Store};

use crate::support::{
    eventually, job_queue, publish_jobs, spawn_one, stats_of, stop, Backend, Followup, Job,
};

/// Items of one batch at once.
const LIMIT: usize = 4;

/// How many items run now, and the most that ever ran at once.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// Handles its batch of 20 with [`for_each_concurrent`] up to [`LIMIT`]: each item takes
/// 50 ms, then by `n % 6`: 0 retried, 1 failed, 2 an `Err` (dead), 3 cancelled, 4 a panic
/// (retried), 5 delivered with a followup.
struct Concurrent {
    gauge: Arc<Gauge>,
}

#[async_trait]
impl<S: Store> EventHandler<S> for Concurrent {
    type Event = Job;
    const BATCH_SIZE: usize = 20;

    /// The retried items wait past the end of the case.
    fn backoff(&self, _: u32) -> Duration {
        Duration::from_secs(3600)
    }

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        let gauge = &self.gauge;
        for_each_concurrent(batch, ctx, LIMIT, |item| async move {
            let running = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.max.fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            gauge.now.fetch_sub(1, Ordering::SeqCst);
            let n = item.payload.n;
            match n % 6 {
                0 => Ok(ItemOutcome::retry_after(Duration::from_secs(3600), "later")),
                1 => Ok(ItemOutcome::fail("never")),
                2 => Err(HandlerError::fail("an item's error")),
                3 => Ok(ItemOutcome::cancel("not wanted")),
                4 => panic!("item {n} broke"),
                _ => Ok(ItemOutcome::delivered().emit(Followup { of: n })),
            }
        })
        .await
    }
}

/// With a bound of 4, at most 4 items of the batch of 20 run at once (and 4 do), and each
/// item's outcome is its own; only delivered items' followups are published.
pub async fn item_concurrency_is_bounded_and_keeps_each_items_outcome<B: Backend>(b: &B) {
    let store = b.store(6).await;
    let ids = publish_jobs(&store, 20).await;
    let gauge = Arc::new(Gauge::default());
    let running = spawn_one(
        &store,
        Concurrent {
            gauge: gauge.clone(),
        },
    );
    eventually(Duration::from_secs(20), "the batch committed", || async {
        let s = stats_of(&store, &job_queue()).await;
        s.in_flight == 0 && s.delivered > 0
    })
    .await;
    stop(running).await;
    assert_eq!(gauge.max.load(Ordering::SeqCst), LIMIT);

    for (n, id) in ids.iter().enumerate() {
        let row = b.row(*id).await;
        let (status, error) = match n % 6 {
            0 => ("pending", Some("later".to_owned())),
            1 => ("dead", Some("never".to_owned())),
            2 => ("dead", Some("an item's error".to_owned())),
            3 => ("cancelled", None),
            4 => ("pending", Some(format!("handler panicked: item {n} broke"))),
            _ => ("delivered", None),
        };
        assert_eq!(row.status, status, "job {n}");
        assert_eq!(row.last_error, error, "job {n}");
        if n % 6 == 3 {
            assert_eq!(row.cancel_reason.as_deref(), Some("not wanted"));
        }
    }
    let followups = conveyor::Queue::new(<Followup as conveyor::Event>::NAME, None);
    let published = stats_of(&store, &followups).await;
    assert_eq!(published.pending, 3, "jobs 5, 11 and 17 followed up");
}
