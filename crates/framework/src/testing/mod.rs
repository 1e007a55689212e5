//! Test your handlers against a real store (feature `testing`).
//!
//! - [`run_batch`] / [`run_batch_as_attempt`]: run one batch of a handler through the same
//!   decode → handle → complete path as in a pool, and get its [`TestRun`]: per-item
//!   outcomes and the emitted events ([`TestRun::emitted`] decodes them to their type).
//! - [`drain`]: run a [`WorkerPool`](crate::WorkerPool) until none of its queues has due or
//!   in-flight work, and count what happened ([`Drained`]).
//! - [`published`] / [`assert_published`]: the events waiting in the outbox.
//! - [`sqlite`]: a store on a temporary SQLite file, removed when it drops.
//!
//! The handler's writes, its emitted events and its outcomes are exactly what production
//! would commit: nothing is simulated.
//!
//! # Example
//! A handler unit test on a temporary SQLite file:
//! ```
//! # use conveyor::{Batch, Context, EventHandler, HandlerError, Store};
//! # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
//! # struct Ping { #[garde(skip)] n: u32 }
//! # impl conveyor::Event for Ping { const NAME: &'static str = "ping"; }
//! # #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, garde::Validate)]
//! # struct Pong { #[garde(skip)] n: u32 }
//! # impl conveyor::Event for Pong { const NAME: &'static str = "pong"; }
//! # struct Reply;
//! # #[async_trait::async_trait]
//! # impl<S: Store> EventHandler<S> for Reply {
//! #     type Event = Ping;
//! #     async fn handle(&self, batch: Batch<Ping>, ctx: &mut Context<'_, S>) -> Result<(), HandlerError> {
//! #         for item in &batch { ctx.emit_for(item.id, Pong { n: item.payload.n })?; }
//! #         Ok(())
//! #     }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> conveyor::Result<()> {
//! use conveyor::testing;
//!
//! let db = testing::sqlite().await?; // a temporary file, removed when `db` drops
//! let run = testing::run_batch(&*db, &Reply, vec![Ping { n: 1 }]).await?;
//! assert_eq!(run.outcomes[0].1, conveyor::Outcome::Delivered);
//! assert_eq!(run.emitted::<Pong>(), vec![Pong { n: 1 }]);
//! testing::assert_published(&*db, |p: &Pong| p.n == 1).await;
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{Event, EventId, NewEvent, Queue};
use crate::handler::EventHandler;
use crate::runner::{run_typed, Layers};
use crate::store::{ClaimRequest, ClaimedEvent, Completion, Outcome, Store};

mod drain;
mod outbox;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use drain::{drain, Drained};
pub use outbox::{assert_published, published};
#[cfg(feature = "sqlite")]
pub use sqlite::{sqlite, TempSqlite};

/// What one batch did.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The outcome of each event, in claim order.
    pub outcomes: Vec<(EventId, Outcome)>,
    /// The events the handler emitted that were committed, as stored (JSON payloads).
    pub emitted: Vec<NewEvent>,
}

impl TestRun {
    /// The committed emitted events of type `E`, decoded, in emit order.
    ///
    /// # Panics
    /// When an event named `E::NAME` does not decode as `E` (another type shares the name),
    /// naming the payload and the decode error.
    pub fn emitted<E: Event>(&self) -> Vec<E> {
        self.emitted
            .iter()
            .filter(|e| e.event_type == E::NAME)
            .map(|e| {
                serde_json::from_str(&e.payload).unwrap_or_else(|err| {
                    panic!(
                        "emitted {:?} event does not decode as {}: {err}; payload: {}",
                        E::NAME,
                        std::any::type_name::<E>(),
                        e.payload
                    )
                })
            })
            .collect()
    }
}

const WORKER: &str = "conveyor-testing";

/// Publish `events` to the handler's queue, claim them as one batch, run `handler` on it
/// and commit the result: [`run_batch_as_attempt`] as the first attempt.
///
/// # Errors
/// As [`run_batch_as_attempt`].
pub async fn run_batch<S, H>(store: &S, handler: &H, events: Vec<H::Event>) -> Result<TestRun>
where
    S: Store,
    H: EventHandler<S>,
{
    run_batch_as_attempt(store, handler, events, 1).await
}

/// [`run_batch`] as attempt number `attempt` (1 is the first): the events are claimed and
/// released `attempt - 1` times first, so the store counts the earlier attempts exactly as
/// failed ones, and the batch's outcomes come from the real completion path. With the
/// default `MAX_RETRIES = 5`, a failing attempt 5 is retried and a failing attempt 6 is
/// dead-lettered.
///
/// # Errors
/// [`Error::Config`] for attempt 0, when the queue held other due events (run it on an
/// empty queue, as with a fresh test database) or `events` exceeds `BATCH_SIZE`; store
/// errors otherwise.
pub async fn run_batch_as_attempt<S, H>(
    store: &S,
    handler: &H,
    events: Vec<H::Event>,
    attempt: u32,
) -> Result<TestRun>
where
    S: Store,
    H: EventHandler<S>,
{
    if attempt == 0 {
        return Err(Error::Config(
            "run_batch_as_attempt: attempts count from 1".into(),
        ));
    }
    if events.len() > H::BATCH_SIZE {
        return Err(Error::Config(format!(
            "run_batch: {} events exceed BATCH_SIZE {}",
            events.len(),
            H::BATCH_SIZE
        )));
    }
    let queue = Queue::new(<H::Event as Event>::NAME, H::ROUTING_KEY);
    let msgs = events.into_iter().map(|e| {
        let msg = crate::Message::new(e);
        match H::ROUTING_KEY {
            Some(key) => msg.routing_key(key),
            None => msg,
        }
    });
    let published: Vec<EventId> = store.publish_batch(msgs).await?.inserted().collect();
    for _ in 1..attempt {
        // an earlier attempt: claimed (counted), then returned with its attempt kept
        claim_exactly(store, &queue, &published, H::BATCH_SIZE, H::PRIORITY_AGING).await?;
        store.release(WORKER, &published, false).await?;
    }
    let rows = claim_exactly(store, &queue, &published, H::BATCH_SIZE, H::PRIORITY_AGING).await?;
    let plan = run_typed(handler, store, rows, H::TIMEOUT, Layers::NONE).await;
    let run = TestRun {
        outcomes: plan.outcomes.clone(),
        emitted: plan.emitted.clone(),
    };
    let completion = Completion {
        worker: WORKER.to_owned(),
        outcomes: plan.outcomes,
        emitted: plan.emitted,
        delete_delivered: false,
    };
    store.complete(plan.tx, &completion).await?;
    Ok(run)
}

/// Claim `queue`'s due events, which must be exactly `published`.
async fn claim_exactly<S: Store>(
    store: &S,
    queue: &Queue,
    published: &[EventId],
    limit: usize,
    priority_aging: Duration,
) -> Result<Vec<ClaimedEvent>> {
    let rows = store
        .claim(ClaimRequest {
            queue,
            worker: WORKER,
            limit,
            lease: Duration::from_secs(60),
            fairness_cursor: "",
            priority_aging,
        })
        .await?;
    if rows.iter().any(|r| !published.contains(&r.id)) || rows.len() != published.len() {
        let ids: Vec<EventId> = rows.iter().map(|r| r.id).collect();
        store.release(WORKER, &ids, true).await?;
        return Err(Error::Config(format!(
            "run_batch: queue {queue} held other due events; use an empty queue"
        )));
    }
    Ok(rows)
}
