//! Running one claimed batch through a typed handler: decode, validate, handle, and turn
//! the result into per-item [`Outcome`]s. Type-erased so the pool holds handlers of any event type.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

use crate::context::{Cause, Context, Mark};
use crate::error::panic_message;
use crate::event::{validate, EventId, NewEvent};
use crate::handler::{Batch, EventHandler, HandlerError, Item};
use crate::hooks::{BatchInfo, OutcomeCounts};
use crate::middleware::{Handled, Middleware, Next};
use crate::store::{ClaimedEvent, Outcome, Store};

/// What a batch commits: outcomes, emitted events and the handler's transaction (if it wrote).
pub(crate) struct Plan<S: Store> {
    pub(crate) outcomes: Vec<(EventId, Outcome)>,
    pub(crate) emitted: Vec<NewEvent>,
    pub(crate) tx: Option<S::Tx>,
    /// The error that failed the whole batch, if any.
    pub(crate) error: Option<String>,
}

impl<S: Store> Plan<S> {
    /// How many events got each outcome.
    pub(crate) fn counts(&self) -> OutcomeCounts {
        OutcomeCounts::of(&self.outcomes)
    }
}

/// A handler with its event type erased.
#[async_trait]
pub(crate) trait Runner<S: Store>: Send + Sync {
    /// Run `rows` through the handler inside `layers` (which need `batch`).
    async fn run(&self, store: &S, rows: Vec<ClaimedEvent>, layers: Layers<'_>) -> Plan<S>;
}

/// The middleware a batch runs through, and the batch as they see it.
#[derive(Clone, Copy)]
pub(crate) struct Layers<'a> {
    pub(crate) chain: &'a [Arc<dyn Middleware>],
    pub(crate) batch: Option<&'a BatchInfo>,
}

#[cfg(feature = "testing")]
impl Layers<'_> {
    /// No middleware.
    pub(crate) const NONE: Layers<'static> = Layers {
        chain: &[],
        batch: None,
    };
}

/// The [`Runner`] of a typed handler, with the most one `handle` call may run.
pub(crate) struct Typed<H> {
    pub(crate) handler: H,
    pub(crate) timeout: std::time::Duration,
}

#[async_trait]
impl<S: Store, H: EventHandler<S>> Runner<S> for Typed<H> {
    async fn run(&self, store: &S, rows: Vec<ClaimedEvent>, layers: Layers<'_>) -> Plan<S> {
        run_typed(&self.handler, store, rows, self.timeout, layers).await
    }
}

/// Run claimed `rows` through `handler` (inside `layers`) and plan what the batch commits; a
/// `handle` call running past `timeout` is dropped and fails the batch as a retry.
pub(crate) async fn run_typed<S: Store, H: EventHandler<S>>(
    handler: &H,
    store: &S,
    rows: Vec<ClaimedEvent>,
    timeout: std::time::Duration,
    layers: Layers<'_>,
) -> Plan<S> {
    let (items, mut outcomes) = decode::<S, H>(handler, rows);
    if items.is_empty() {
        return Plan {
            outcomes,
            emitted: Vec::new(),
            tx: None,
            error: None,
        };
    }
    let attempts: Vec<(EventId, u32)> = items.iter().map(|i| (i.id, i.attempt)).collect();
    let causes = items.iter().map(|i| (i.id, Cause::of(i))).collect();
    let mut ctx = Context::new(store, causes);
    let count = items.len();
    let handle = async {
        let handled = AssertUnwindSafe(handler.handle(Batch { items }, &mut ctx)).catch_unwind();
        // past the timeout the call is dropped; `ctx` (its transaction) drops below: rolled back
        let result = match tokio::time::timeout(timeout, handled).await {
            Ok(done) => done.unwrap_or_else(|panic| {
                Err(HandlerError::retry(format!(
                    "handler panicked: {}",
                    panic_message(&*panic)
                )))
            }),
            Err(_) => Err(HandlerError::retry(format!("timed out after {timeout:?}"))),
        };
        Handled::new(result, count, ctx.marks.values())
    };
    let result = match layers.batch.filter(|_| !layers.chain.is_empty()) {
        None => handle.await.result,
        Some(batch) => {
            let chain = Next::new(layers.chain, batch, count, Box::pin(handle)).run();
            AssertUnwindSafe(chain)
                .catch_unwind()
                .await
                .map(|handled| handled.result)
                .unwrap_or_else(|panic| {
                    Err(HandlerError::retry(format!(
                        "middleware panicked: {}",
                        panic_message(&*panic)
                    )))
                })
        }
    };

    let mut plan = Plan {
        outcomes: Vec::new(),
        emitted: Vec::new(),
        tx: None,
        error: result.as_ref().err().map(ToString::to_string),
    };
    match result {
        Ok(()) => {
            for (id, attempt) in attempts {
                let outcome = match ctx.marks.remove(&id) {
                    None => Outcome::Delivered,
                    Some(Mark::Retry { after, error }) => {
                        retry_or_die(handler, attempt, after, error)
                    }
                    Some(Mark::Fail { error }) => Outcome::Dead { error },
                    Some(Mark::Snooze { after }) => Outcome::Snoozed { delay: after },
                    Some(Mark::Cancel { reason }) => Outcome::Cancelled { reason },
                };
                outcomes.push((id, outcome));
            }
            let delivered: HashSet<EventId> = outcomes
                .iter()
                .filter(|(_, o)| *o == Outcome::Delivered)
                .map(|(id, _)| *id)
                .collect();
            plan.emitted = std::mem::take(&mut ctx.emitted)
                .into_iter()
                .filter(|(cause, _)| cause.is_none_or(|c| delivered.contains(&c)))
                .map(|(_, event)| event)
                .collect();
            plan.tx = ctx.take_tx();
        }
        // the transaction and emitted events drop with `ctx`: rolled back
        Err(HandlerError::Retry { after, error }) => {
            for (id, attempt) in attempts {
                outcomes.push((id, retry_or_die(handler, attempt, after, error.clone())));
            }
        }
        Err(HandlerError::Fail { error }) => {
            for (id, _) in attempts {
                outcomes.push((
                    id,
                    Outcome::Dead {
                        error: error.clone(),
                    },
                ));
            }
        }
    }
    plan.outcomes = outcomes;
    plan
}

/// Items ready for the handler, and outcomes of rows that never reach it.
type Decoded<E> = (Vec<Item<E>>, Vec<(EventId, Outcome)>);

/// Decode and validate rows; rows that cannot be handled get their outcome right away.
fn decode<S: Store, H: EventHandler<S>>(handler: &H, rows: Vec<ClaimedEvent>) -> Decoded<H::Event> {
    let max_retries = handler.max_retries();
    let mut items = Vec::with_capacity(rows.len());
    let mut outcomes = Vec::new();
    for row in rows {
        // the previous attempt was the last allowed and never completed (its worker died)
        if row.attempts > max_retries.saturating_add(1) {
            let error = format!(
                "gave up after {} attempts; last error: {}",
                row.attempts - 1,
                row.last_error.as_deref().unwrap_or("none recorded")
            );
            outcomes.push((row.id, Outcome::Dead { error }));
            continue;
        }
        let payload = serde_json::from_str::<H::Event>(&row.payload)
            .map_err(crate::Error::from)
            .and_then(|p| validate(&p).map(|()| p));
        match payload {
            Ok(payload) => items.push(Item {
                id: row.id,
                payload,
                attempt: row.attempts,
                fairness_key: row.fairness_key,
                correlation_id: row.correlation_id,
                causation_id: row.causation_id,
                created_at: row.created_at,
                last_error: row.last_error,
                ordering_key: row.ordering_key,
                traceparent: row.traceparent,
            }),
            // poison: never retried
            Err(e) => outcomes.push((
                row.id,
                Outcome::Dead {
                    error: e.to_string(),
                },
            )),
        }
    }
    (items, outcomes)
}

fn retry_or_die<S: Store, H: EventHandler<S>>(
    handler: &H,
    attempt: u32,
    after: Option<std::time::Duration>,
    error: String,
) -> Outcome {
    if attempt > handler.max_retries() {
        return Outcome::Dead {
            error: format!("{error} (gave up after {attempt} attempts)"),
        };
    }
    Outcome::Retry {
        delay: after.unwrap_or_else(|| handler.backoff(attempt)),
        error,
    }
}
