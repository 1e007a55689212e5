//! Run one batch of a handler and inspect what it did (feature `testing`).
//!
//! The batch goes through the same decode → handle → complete path as in a pool, against a
//! real store, so the handler's writes, its emitted events and its per-item outcomes are
//! exactly what production would commit.
//!
//! # Example
//! ```no_run
//! # use conveyor::{Batch, Context, EventHandler, HandlerError};
//! # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
//! # struct Ping { #[garde(skip)] n: u32 }
//! # impl conveyor::Event for Ping { const NAME: &'static str = "ping"; }
//! # struct Pong;
//! # #[async_trait::async_trait]
//! # impl EventHandler for Pong {
//! #     type Event = Ping;
//! #     async fn handle(&self, _: Batch<Ping>, _: &mut Context<'_>) -> Result<(), HandlerError> { Ok(()) }
//! # }
//! # async fn run(store: conveyor::PgStore) -> conveyor::Result<()> {
//! let run = conveyor::testing::run_batch(&store, &Pong, vec![Ping { n: 1 }]).await?;
//! assert!(run.outcomes.iter().all(|(_, o)| *o == conveyor::Outcome::Delivered));
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{Event, EventId, NewEvent, Queue};
use crate::handler::EventHandler;
use crate::runner::run_typed;
use crate::store::{ClaimRequest, Completion, Outcome, Store};

/// What one batch did.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The outcome of each event, in claim order.
    pub outcomes: Vec<(EventId, Outcome)>,
    /// The events the handler emitted that were committed.
    pub emitted: Vec<NewEvent>,
}

const WORKER: &str = "conveyor-testing";

/// Publish `events` to the handler's queue, claim them as one batch, run `handler` on it
/// and commit the result.
///
/// # Errors
/// [`Error::Config`] when the queue held other due events (run it on an empty queue, as
/// with a fresh test database) or `events` exceeds `BATCH_SIZE`; store errors otherwise.
pub async fn run_batch<S, H>(store: &S, handler: &H, events: Vec<H::Event>) -> Result<TestRun>
where
    S: Store,
    H: EventHandler<S>,
{
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
    let rows = store
        .claim(ClaimRequest {
            queue: &queue,
            worker: WORKER,
            limit: H::BATCH_SIZE,
            lease: Duration::from_secs(60),
            fairness_cursor: "",
        })
        .await?;
    if rows.iter().any(|r| !published.contains(&r.id)) || rows.len() != published.len() {
        let ids: Vec<EventId> = rows.iter().map(|r| r.id).collect();
        store.release(WORKER, &ids, true).await?;
        return Err(Error::Config(format!(
            "run_batch: queue {queue} held other due events; use an empty queue"
        )));
    }
    let plan = run_typed(handler, store, rows).await;
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
