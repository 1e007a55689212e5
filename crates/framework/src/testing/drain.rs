//! [`drain`]: run a worker pool until its queues have no due or in-flight work left.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::Queue;
use crate::pool::PoolBuilder;
use crate::store::{QueueStats, Store};

/// How often [`drain`] looks at the queues.
const CHECK_EVERY: Duration = Duration::from_millis(20);

/// What a [`drain`] left in the pool's queues, summed over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Drained {
    /// Delivered events still kept (zero when the pool's delivered retention is zero).
    pub delivered: i64,
    /// Pending events that failed at least once and wait for their retry.
    pub retrying: i64,
    /// Dead letters.
    pub dead: i64,
    /// Cancelled events still kept (pruned like delivered ones).
    pub cancelled: i64,
    /// Pending events not due yet: retries waiting for their backoff and delayed publishes.
    pub delayed: i64,
    /// The per-queue counts these are summed from.
    pub stats: Vec<QueueStats>,
}

/// Build the pool of `builder` and run it until none of its queues has a due or in-flight
/// event (events not due yet, such as delayed publishes and retries waiting for their
/// backoff, do not hold it up), then shut it down and return the queues' counts.
///
/// Counts are the queues' state, not what this drain alone did: run it on a fresh database.
///
/// # Example
/// ```no_run
/// # use conveyor::{Batch, Context, EventHandler, HandlerError, WorkerPool};
/// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
/// # struct Ping { #[garde(skip)] n: u32 }
/// # impl conveyor::Event for Ping { const NAME: &'static str = "ping"; }
/// # struct Pong;
/// # #[async_trait::async_trait]
/// # impl EventHandler for Pong {
/// #     type Event = Ping;
/// #     async fn handle(&self, _: Batch<Ping>, _: &mut Context<'_>) -> Result<(), HandlerError> { Ok(()) }
/// # }
/// # async fn run(store: conveyor::PgStore) -> conveyor::Result<()> {
/// use conveyor::Store as _;
/// store.publish(Ping { n: 1 }).await?;
/// let builder = WorkerPool::builder(store).register(Pong);
/// let drained = conveyor::testing::drain(builder, std::time::Duration::from_secs(5)).await?;
/// assert_eq!(drained.delivered, 1);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Config`] when work is still due or in flight after `timeout` (the pool is shut
/// down first); the errors of [`PoolBuilder::build`], [`WorkerPool::run`](crate::WorkerPool::run)
/// and [`Store::stats`].
pub async fn drain<S: Store>(builder: PoolBuilder<S>, timeout: Duration) -> Result<Drained> {
    let pool = builder.build()?;
    let store = pool.store().clone();
    let queues: Vec<Queue> = pool.queues().cloned().collect();
    let mut outcome = None;
    let watch = async {
        outcome = Some(tokio::time::timeout(timeout, settled(&store, &queues)).await);
    };
    pool.run(watch).await?;
    let stats = match outcome {
        Some(Ok(stats)) => stats?,
        Some(Err(_elapsed)) => {
            let stats = of_queues(&store, &queues).await?;
            let (due, in_flight) = stats
                .iter()
                .fold((0, 0), |(d, f), s| (d + s.due, f + s.in_flight));
            return Err(Error::Config(format!(
                "drain: {due} due and {in_flight} in-flight events left after {timeout:?}"
            )));
        }
        None => return Err(Error::Task("drain: the pool stopped by itself".into())),
    };
    let sum = |f: fn(&QueueStats) -> i64| stats.iter().map(f).sum();
    Ok(Drained {
        delivered: sum(|s| s.delivered),
        retrying: sum(|s| s.retrying),
        dead: sum(|s| s.dead),
        cancelled: sum(|s| s.cancelled),
        delayed: sum(|s| s.pending - s.due),
        stats,
    })
}

/// Wait until no queue of `queues` has due or in-flight events at two checks in a row (an
/// event retried with no delay may look a millisecond early to the first); their counts then.
async fn settled<S: Store>(store: &S, queues: &[Queue]) -> Result<Vec<QueueStats>> {
    let mut quiet = false;
    loop {
        let stats = of_queues(store, queues).await?;
        let idle = stats.iter().all(|s| s.due == 0 && s.in_flight == 0);
        if idle && quiet {
            return Ok(stats);
        }
        quiet = idle;
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// The stats of `queues` (a queue that never held an event has none).
async fn of_queues<S: Store>(store: &S, queues: &[Queue]) -> Result<Vec<QueueStats>> {
    let mut stats = store.stats().await?;
    stats.retain(|s| queues.contains(&s.queue));
    Ok(stats)
}
