//! The handler contract: [`EventHandler`], the [`Batch`] it receives, and [`HandlerError`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::context::Context;
use crate::event::{Event, EventId};
use crate::store::Store;
use crate::DefaultStore;

/// A typed handler for one queue: an event type and an optional routing key.
///
/// State only what differs from the defaults. `S` is the backend whose transaction the
/// handler writes through ([`Context::db`]); it defaults to Postgres. A handler that does
/// not write to the database can implement `EventHandler<S>` for every `S: Store`.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use conveyor::{Batch, Context, EventHandler, HandlerError};
///
/// #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
/// struct OrderPlaced {
///     #[garde(length(min = 1))]
///     order_id: String,
/// }
/// impl conveyor::Event for OrderPlaced {
///     const NAME: &'static str = "order_placed";
/// }
///
/// struct SendReceipt;
///
/// #[async_trait::async_trait]
/// impl EventHandler for SendReceipt {
///     type Event = OrderPlaced;
///     const BATCH_SIZE: usize = 50;
///     const MAX_RETRIES: u32 = 10;
///
///     async fn handle(&self, batch: Batch<OrderPlaced>, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
///         for item in batch.iter() {
///             sqlx::query("insert into receipts (order_id) values ($1) on conflict do nothing")
///                 .bind(&item.payload.order_id)
///                 .execute(ctx.db().await?)
///                 .await?;
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait EventHandler<S: Store = DefaultStore>: Send + Sync + 'static {
    /// The payload type this handler consumes.
    type Event: Event;

    /// Claim only events published with this routing key. Defaults to `None`: events
    /// published without one.
    const ROUTING_KEY: Option<&'static str> = None;
    /// The subscription this handler consumes its event type under. Defaults to `""`, the
    /// default subscription.
    ///
    /// Every subscription of an event type (and routing key) gets its own copy of each event
    /// published after it was recorded, with its own attempts, retries, dead letters and
    /// pause, so several handlers (in one pool or in separate deployments) can each handle
    /// every `OrderPlaced`. A pool records its handlers' subscriptions in the database when it
    /// starts ([`WorkerPool::subscribe`](crate::WorkerPool::subscribe) records them without
    /// starting), and a recorded subscription keeps receiving copies while none of its
    /// processes runs, until an operator removes it (`conveyor subscriptions remove`,
    /// [`Store::unsubscribe`](crate::Store::unsubscribe)). When no subscription of an event
    /// type is recorded, a publish stores one copy for the default subscription, as it did
    /// before subscriptions existed. Two handlers on the same subscription in one pool are a
    /// build error; two handler types recording the same subscription from different
    /// deployments are logged as a warning, since they would split its events.
    /// `HandlerOptions::subscription` overrides it. pg-boss's `subscribe`/`publish` fan-out
    /// works this way; River and Oban have no fan-out (one job, one worker).
    const SUBSCRIPTION: &'static str = "";
    /// The most events handed to one `handle` call. Defaults to 1.
    const BATCH_SIZE: usize = 1;
    /// How often an idle worker polls when no wake-up arrives. Defaults to 500 ms.
    /// Wake-ups (LISTEN/NOTIFY) start new events within milliseconds; polling is the fallback.
    const POLL_INTERVAL: Duration = Duration::from_millis(500);
    /// Retries after the first attempt before an event is dead-lettered. Defaults to 5.
    const MAX_RETRIES: u32 = 5;
    /// The lease a claim holds, renewed by a heartbeat while the batch runs. After a crash,
    /// the events return to the queue once it expires. Defaults to 60 s.
    const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);
    /// The most one `handle` call may run. Past it the call is dropped (its transaction
    /// rolls back, its emitted events are discarded) and the whole batch is retried with
    /// backoff as a failed attempt with the error "timed out after …", dead-lettered once
    /// retries run out. Defaults to 5 minutes (River's default is 1 minute, Oban has none);
    /// `HandlerOptions::timeout` overrides it. Only a handler that yields (awaits) can be
    /// stopped: a blocking call inside it is not interrupted.
    const TIMEOUT: Duration = Duration::from_secs(300);
    /// How long an event may be due before it is claimed ahead of every priority, oldest
    /// first: the rule that keeps low-priority events from starving (see
    /// [`Message::priority`](crate::Message::priority)). Defaults to 60 s;
    /// `HandlerOptions::priority_aging` overrides it. River and Oban have no such aging
    /// (strict priorities); `Duration::ZERO` makes every due event aged, which ignores
    /// priorities (due-time order). Values above 100 years count as 100 years (never, in
    /// practice).
    const PRIORITY_AGING: Duration = Duration::from_secs(60);
    /// How many events of one ordering key may run at once (see
    /// [`Message::ordering_key`](crate::Message::ordering_key)): 1 by default, strict
    /// one-at-a-time FIFO per key. `HandlerOptions::key_concurrency` overrides it.
    const KEY_CONCURRENCY: u32 = 1;
    /// What happens to an ordering key whose head event dies (runs out of retries or
    /// fails): [`DeadHead::Park`](crate::DeadHead::Park) by default.
    /// `HandlerOptions::on_dead_head` overrides it.
    const ON_DEAD_HEAD: crate::DeadHead = crate::DeadHead::Park;
    /// The most events of this handler's queue in flight at once across every process (an
    /// API that allows five concurrent calls), enforced by the database at claim time.
    /// `None` (the default) sets no limit; `HandlerOptions::max_in_flight` overrides it.
    const MAX_IN_FLIGHT: Option<u32> = None;

    /// Handle a batch. Items not marked otherwise through `ctx` are delivered when this
    /// returns `Ok`; an `Err` rolls back the handler's writes and emitted events and applies
    /// to every item of the batch.
    async fn handle(
        &self,
        batch: Batch<Self::Event>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError>;

    /// The delay before retry number `attempt` (1 for the first). Defaults to
    /// [`retry::backoff`](crate::retry::backoff): exponential from 1 s, capped at 1 h, with jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        crate::retry::backoff(attempt)
    }

    /// Retries after the first attempt before an event is dead-lettered. Defaults to
    /// [`MAX_RETRIES`](Self::MAX_RETRIES); override it when the limit is configuration
    /// (a handler built from the server's flags, say) rather than a constant.
    fn max_retries(&self) -> u32 {
        Self::MAX_RETRIES
    }
}

/// The events of one claim, decoded and validated.
#[derive(Debug)]
pub struct Batch<E> {
    pub(crate) items: Vec<Item<E>>,
}

impl<E> Batch<E> {
    /// The items in claim order.
    pub fn iter(&self) -> std::slice::Iter<'_, Item<E>> {
        self.items.iter()
    }

    /// How many items the batch holds (at least 1).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch is empty (never, when handed to a handler).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items, by value.
    pub fn into_items(self) -> Vec<Item<E>> {
        self.items
    }
}

impl<E> IntoIterator for Batch<E> {
    type Item = Item<E>;
    type IntoIter = std::vec::IntoIter<Item<E>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, E> IntoIterator for &'a Batch<E> {
    type Item = &'a Item<E>;
    type IntoIter = std::slice::Iter<'a, Item<E>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// One event of a batch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Item<E> {
    /// The event's id.
    pub id: EventId,
    /// The decoded, validated payload.
    pub payload: E,
    /// Which attempt this is: 1 the first time.
    pub attempt: u32,
    /// The event's fairness group (`""` for the default group).
    pub fairness_key: String,
    /// The chain the event belongs to.
    pub correlation_id: Option<Uuid>,
    /// The event whose handler emitted this one.
    pub causation_id: Option<EventId>,
    /// When the event was published.
    pub created_at: DateTime<Utc>,
    /// The previous attempt's error, if any.
    pub last_error: Option<String>,
    /// The event's ordering key, if it was published with one
    /// ([`Message::ordering_key`](crate::Message::ordering_key)).
    pub ordering_key: Option<String>,
    pub(crate) traceparent: Option<String>,
}

impl<E> Item<E> {
    /// The W3C trace context the event was published in (`00-<trace id>-<span id>-<flags>`),
    /// if it has one: see [`Message::traceparent`](crate::Message::traceparent). The batch's
    /// span already continues it (with the `opentelemetry` feature); a handler that runs
    /// items under spans of its own can parent each on its item's context.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The item's trace context as an OpenTelemetry context whose remote parent is the
    /// publishing span (an empty context when the event has none), for
    /// `tracing_opentelemetry::OpenTelemetrySpanExt::set_parent` on a per-item span.
    #[cfg(feature = "opentelemetry")]
    pub fn otel_context(&self) -> opentelemetry::Context {
        crate::trace::context(self.traceparent.as_deref())
    }
}

/// How a whole batch failed. Per-item outcomes go through [`Context::retry`] and [`Context::fail`].
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Transient: every item is retried, after `after` or the handler's backoff.
    #[error("{error}")]
    Retry {
        /// Retry after this delay instead of the handler's backoff.
        after: Option<Duration>,
        /// What went wrong, stored as the events' `last_error`.
        error: String,
    },
    /// Permanent: every item is dead-lettered.
    #[error("{error}")]
    Fail {
        /// What went wrong, stored as the events' `last_error`.
        error: String,
    },
}

impl HandlerError {
    /// A transient failure, retried after the handler's backoff.
    pub fn retry(error: impl fmt::Display) -> Self {
        HandlerError::Retry {
            after: None,
            error: error.to_string(),
        }
    }

    /// A transient failure, retried after `after`.
    pub fn retry_after(after: Duration, error: impl fmt::Display) -> Self {
        HandlerError::Retry {
            after: Some(after),
            error: error.to_string(),
        }
    }

    /// A permanent failure: dead-letter the batch.
    pub fn fail(error: impl fmt::Display) -> Self {
        HandlerError::Fail {
            error: error.to_string(),
        }
    }
}

/// Database errors are transient: retry.
impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::retry(e)
    }
}

/// Framework errors from inside a handler: an invalid emitted event is a bug (fail);
/// anything else is transient (retry).
impl From<crate::Error> for HandlerError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Validation { .. } | crate::Error::Json(_) => HandlerError::fail(e),
            other => HandlerError::retry(other),
        }
    }
}

/// Classify any error as retryable or fatal with `?`.
///
/// ```
/// use conveyor::{HandlerError, ResultExt};
/// fn parse(s: &str) -> Result<u32, HandlerError> {
///     s.parse::<u32>().fatal()
/// }
/// assert!(matches!(parse("x"), Err(HandlerError::Fail { .. })));
/// ```
pub trait ResultExt<T> {
    /// A failure here is transient.
    fn retryable(self) -> Result<T, HandlerError>;
    /// A failure here is permanent.
    fn fatal(self) -> Result<T, HandlerError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, HandlerError> {
        self.map_err(HandlerError::retry)
    }
    fn fatal(self) -> Result<T, HandlerError> {
        self.map_err(HandlerError::fail)
    }
}
