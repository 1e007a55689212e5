//! Concurrency inside a batch: [`for_each_concurrent`] runs a function on a batch's items,
//! up to a bound at once, and applies what each returns ([`ItemOutcome`]: its outcome and
//! its emitted events) to the batch's [`Context`] in item order, so the single commit, the
//! per-item outcomes and the emits keep their meaning.
//!
//! # Batch size for latency-bound work
//! A batch is claimed, handled and committed as one: an item is done only when the whole
//! batch commits. With items handled one after another, the last item of a batch of 32 waits
//! for the 31 before it, so batching trades latency for throughput. For work bound by
//! latency (an HTTP call per item) either keep `BATCH_SIZE` small (1 to 4) and raise the
//! handler's concurrency (`HandlerOptions::concurrency`, one claim and one commit per batch),
//! or keep the batch and handle its items concurrently here, which keeps one claim and one
//! commit per batch while no item waits for another's call. The items still wait for the
//! batch's slowest one before they commit. docs/PERFORMANCE.md has the numbers.
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use conveyor::items::{for_each_concurrent, ItemOutcome};
//! use conveyor::{Batch, Context, EventHandler, HandlerError, Store};
//!
//! #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
//! struct Ping { #[garde(skip)] url: String }
//! impl conveyor::Event for Ping { const NAME: &'static str = "ping"; }
//! #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
//! struct Pinged { #[garde(skip)] url: String }
//! impl conveyor::Event for Pinged { const NAME: &'static str = "pinged"; }
//!
//! struct Pinger;
//!
//! #[async_trait::async_trait]
//! impl<S: Store> EventHandler<S> for Pinger {
//!     type Event = Ping;
//!     const BATCH_SIZE: usize = 32;
//!
//!     async fn handle(&self, batch: Batch<Ping>, ctx: &mut Context<'_, S>) -> Result<(), HandlerError> {
//!         // up to 16 calls at once; an item's `Err` retries that item alone
//!         for_each_concurrent(batch, ctx, 16, |item| async move {
//!             tokio::time::sleep(Duration::from_millis(5)).await; // the call
//!             if item.payload.url.is_empty() {
//!                 return Ok(ItemOutcome::fail("no url"));
//!             }
//!             Ok(ItemOutcome::delivered().emit(Pinged { url: item.payload.url }))
//!         })
//!         .await
//!     }
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::{FutureExt, StreamExt};

use crate::context::{Context, Mark};
use crate::error::{panic_message, Result};
use crate::event::{Event, Message, NewEvent};
use crate::handler::{Batch, HandlerError, Item};
use crate::store::Store;

/// What one item's function decided: its outcome (delivered unless stated) and the events
/// it emits (inserted with the batch's commit if the item is delivered, caused by it).
#[derive(Debug)]
#[must_use]
pub struct ItemOutcome {
    mark: Option<Mark>,
    emitted: Vec<Result<NewEvent>>,
}

impl ItemOutcome {
    /// Delivered.
    pub fn delivered() -> Self {
        Self::marked(None)
    }

    /// Retried after the handler's backoff (dead-lettered once retries run out), like
    /// [`Context::retry`].
    pub fn retry(error: impl fmt::Display) -> Self {
        Self::marked(Some(Mark::Retry {
            after: None,
            error: error.to_string(),
        }))
    }

    /// Retried after `after`, like [`Context::retry_after`].
    pub fn retry_after(after: Duration, error: impl fmt::Display) -> Self {
        Self::marked(Some(Mark::Retry {
            after: Some(after),
            error: error.to_string(),
        }))
    }

    /// Dead-lettered now, like [`Context::fail`].
    pub fn fail(error: impl fmt::Display) -> Self {
        Self::marked(Some(Mark::Fail {
            error: error.to_string(),
        }))
    }

    /// Back after `after` without using an attempt, like [`Context::snooze`].
    pub fn snooze(after: Duration) -> Self {
        Self::marked(Some(Mark::Snooze { after }))
    }

    /// Cancelled with `reason`, like [`Context::cancel`].
    pub fn cancel(reason: impl fmt::Display) -> Self {
        Self::marked(Some(Mark::Cancel {
            reason: reason.to_string(),
        }))
    }

    /// Also emit `msg`, caused by this item (as [`Context::emit_for`]). An invalid payload
    /// dead-letters this item with the validation error; its neighbours are unaffected.
    pub fn emit<E: Event>(mut self, msg: impl Into<Message<E>>) -> Self {
        self.emitted.push(msg.into().into_new_event());
        self
    }

    fn marked(mark: Option<Mark>) -> Self {
        Self {
            mark,
            emitted: Vec::new(),
        }
    }
}

/// Run `f` on every item of `batch`, at most `limit` at once (`0` counts as 1), then apply
/// each item's [`ItemOutcome`] to `ctx` in the batch's order.
///
/// The items' futures run concurrently on the handler's task (not spawned), so they need
/// not be `'static`, but they cannot borrow `ctx`: write to the batch's transaction after
/// this returns (the items' results can be collected through `f`'s captures), or make
/// each item's call and return what to record. An item's `Err(HandlerError::Retry)` retries
/// that item, `Err(HandlerError::Fail)` dead-letters it, and a panic retries it with the
/// panic's message; the other items keep their outcomes.
///
/// # Errors
/// None of its own: the batch fails only if the handler returns an error itself.
pub async fn for_each_concurrent<S, E, F, Fut>(
    batch: Batch<E>,
    ctx: &mut Context<'_, S>,
    limit: usize,
    mut f: F,
) -> Result<(), HandlerError>
where
    S: Store,
    E: Send,
    F: FnMut(Item<E>) -> Fut + Send,
    Fut: Future<Output = Result<ItemOutcome, HandlerError>> + Send,
{
    let calls = batch.into_iter().enumerate().map(|(index, item)| {
        let id = item.id;
        let call = AssertUnwindSafe(f(item)).catch_unwind();
        async move {
            let done = call.await.unwrap_or_else(|panic| {
                Err(HandlerError::retry(format!(
                    "handler panicked: {}",
                    panic_message(&*panic)
                )))
            });
            (index, id, done)
        }
    });
    let mut done: Vec<_> = futures::stream::iter(calls)
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    done.sort_unstable_by_key(|(index, _, _)| *index);
    for (_, id, outcome) in done {
        match outcome {
            Ok(ItemOutcome { mark, emitted }) => {
                let emitted: Result<Vec<NewEvent>> = emitted.into_iter().collect();
                match emitted {
                    Ok(events) => {
                        for event in events {
                            ctx.push_event(Some(id), event);
                        }
                        if let Some(mark) = mark {
                            ctx.mark(id, mark);
                        }
                    }
                    Err(e) => ctx.fail(id, e),
                }
            }
            Err(HandlerError::Retry { after, error }) => ctx.mark(id, Mark::Retry { after, error }),
            Err(HandlerError::Fail { error }) => ctx.fail(id, error),
        }
    }
    Ok(())
}
