//! [`Message`]: an event to publish with its delivery options, the checks it runs at publish,
//! and [`NewEvent`], the validated row it becomes.

use std::time::Duration;

use uuid::Uuid;

use super::{check_name, validate, Event, EventId};
use crate::error::{Error, Result};

/// An event to publish, with its delivery options.
///
/// # Example
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
/// # struct OrderPlaced { #[garde(skip)] order_id: String }
/// # impl conveyor::Event for OrderPlaced { const NAME: &'static str = "order_placed"; }
/// use std::time::Duration;
/// let msg = conveyor::Message::new(OrderPlaced { order_id: "o-1".into() })
///     .idempotency_key("order-o-1")
///     .fairness_key("tenant-42")
///     .delay(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct Message<E> {
    pub(crate) payload: E,
    pub(crate) options: Options,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) routing_key: Option<String>,
    pub(crate) delay: Duration,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) fairness_key: Option<String>,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) causation_id: Option<EventId>,
    /// Due at this instant instead of after `delay` (the later of the two calls wins).
    pub(crate) scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Checked against [`PRIORITY_MIN`]..=[`PRIORITY_MAX`] at [`Message::into_new_event`].
    pub(crate) priority: i16,
    pub(crate) ordering_key: Option<String>,
    /// Checked to be a W3C traceparent at [`Message::into_new_event`].
    pub(crate) traceparent: Option<String>,
}

/// The lowest priority [`Message::priority`] accepts.
pub const PRIORITY_MIN: i16 = -10;
/// The highest priority [`Message::priority`] accepts: claimed first.
pub const PRIORITY_MAX: i16 = 10;
/// The priority of a message that states none.
pub const PRIORITY_DEFAULT: i16 = 0;

impl<E: Event> Message<E> {
    /// A message carrying `payload`, due now, with no routing key.
    pub fn new(payload: E) -> Self {
        Self {
            payload,
            options: Options::default(),
        }
    }

    /// Route to the handler registered for this event type and routing key.
    pub fn routing_key(mut self, key: impl Into<String>) -> Self {
        self.options.routing_key = Some(key.into());
        self
    }

    /// Not claimable until `delay` from the publishing transaction's start. Replaces an
    /// earlier [`scheduled_at`](Self::scheduled_at).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.options.delay = delay;
        self.options.scheduled_at = None;
        self
    }

    /// Not claimable before the instant `at`; an instant in the past is due at once.
    /// Replaces an earlier [`delay`](Self::delay).
    ///
    /// The instant becomes a delay when the message is converted for publishing
    /// ([`into_new_event`](Self::into_new_event)), measured on this process's clock, and the
    /// database adds it to its own `now()`: the event comes due at `at` plus the skew
    /// between the two clocks (milliseconds under NTP). River and Oban store the instant
    /// itself; the difference only shows when the clocks disagree.
    pub fn scheduled_at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.options.scheduled_at = Some(at);
        self.options.delay = Duration::ZERO;
        self
    }

    /// Publish at most once per namespace under this key within the store's idempotency
    /// window (24 hours by default; `PgStore::with_idempotency_window`,
    /// `SqliteStore::with_idempotency_window`).
    ///
    /// The guarantee: from the commit of the first publish with this key until the window
    /// has passed, every other publish with it in the namespace stores nothing and reports
    /// [`Published::Duplicate`](super::Published::Duplicate) with the first event's id, however soon that event was
    /// delivered and pruned. The key's row is written in the publishing transaction, so a
    /// rolled-back publish leaves the key free. After the window the key may be used again
    /// (a new event is stored). Keys of emitted events (`ctx.emit`) are enforced the same way.
    /// The window counts from the first publish; a duplicate does not extend it.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.options.idempotency_key = Some(key.into());
        self
    }

    /// The fairness group (tenant, source, ...): claims take rows round-robin across groups.
    pub fn fairness_key(mut self, key: impl Into<String>) -> Self {
        self.options.fairness_key = Some(key.into());
        self
    }

    /// Claim order within the queue: higher first, from [`PRIORITY_MIN`] (-10) to
    /// [`PRIORITY_MAX`] (10); [`PRIORITY_DEFAULT`] (0) unless stated. A value out of range
    /// is refused at publish ([`Error::Validation`] naming `priority`).
    ///
    /// The rule, per claim: fairness groups still round-robin (each group gets its share of
    /// the batch, as without priorities). Within a group's share, events that have been due
    /// for longer than the handler's
    /// [`PRIORITY_AGING`](crate::EventHandler::PRIORITY_AGING) (60 s by default,
    /// `HandlerOptions::priority_aging`) come first, oldest first, whatever their priority;
    /// then the rest by priority (highest first), then due time, then id. So a low-priority
    /// event waits at most its aging time plus the time to drain the aged events ahead of
    /// it: never forever. River and Oban claim by strict priority with no aging, so there a
    /// steady stream of high-priority jobs starves the low ones. With every event at the
    /// default priority the order is the due-time order (due time, then id), as before.
    ///
    /// ```
    /// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
    /// # struct OrderPlaced { #[garde(skip)] order_id: String }
    /// # impl conveyor::Event for OrderPlaced { const NAME: &'static str = "order_placed"; }
    /// let urgent = conveyor::Message::new(OrderPlaced { order_id: "o-1".into() }).priority(5);
    /// assert!(urgent.into_new_event().is_ok());
    /// let err = conveyor::Message::new(OrderPlaced { order_id: "o-2".into() })
    ///     .priority(11)
    ///     .into_new_event()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("priority"), "{err}");
    /// ```
    pub fn priority(mut self, priority: i16) -> Self {
        self.options.priority = priority;
        self
    }

    /// Handle this event after every earlier event of its queue with the same ordering key,
    /// one at a time: per-key FIFO across every process (an account's ledger entries, an
    /// order's state changes). Events with other keys, or none, keep flowing.
    ///
    /// The rule: a queue's events that share an ordering key run in publish order, at most
    /// the handler's [`KEY_CONCURRENCY`](crate::EventHandler::KEY_CONCURRENCY) at a time (1
    /// by default). An event is held back (`waiting`) while that many earlier events of its
    /// key are unfinished. A retry keeps its place at the head of its key, so a retry
    /// scheduled an hour ahead blocks only its own key for that hour. When a head runs out
    /// of retries, the handler's [`ON_DEAD_HEAD`](crate::EventHandler::ON_DEAD_HEAD) says
    /// what follows: [`DeadHead::Park`](crate::DeadHead::Park) (the default) holds the key
    /// until an operator replays the dead event or skips it (`conveyor keys skip`);
    /// [`DeadHead::Skip`](crate::DeadHead::Skip) moves on at once. A cancelled event never
    /// holds its key. Waiting and parked keys cost the claim nothing.
    ///
    /// Ordering applies within one queue (event type, routing key, subscription); each
    /// subscription keeps its own order. Priorities and fairness apply among the events that
    /// may run. A key longer than 256 bytes is refused at publish.
    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.options.ordering_key = Some(key.into());
        self
    }

    /// The id that ties a chain of events together; emitted events inherit it.
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.options.correlation_id = Some(id);
        self
    }

    /// The W3C trace context to store with the event (`00-<trace id>-<span id>-<flags>`),
    /// for a context that crossed a process (an HTTP `traceparent` header) or a build
    /// without the `opentelemetry` feature. Unless stated, the event carries the current
    /// span's context (with the feature, when there is one), which the worker's
    /// `conveyor.batch` span then continues. A malformed value is refused at publish
    /// ([`Error::Validation`] naming `traceparent`).
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.options.traceparent = Some(traceparent.into());
        self
    }

    /// Validate and serialize into the untyped form a [`Store`](crate::Store) inserts.
    ///
    /// # Errors
    /// [`Error::Validation`] if the payload fails validation, the
    /// [`priority`](Self::priority) is out of range or the
    /// [`traceparent`](Self::traceparent) is malformed, [`Error::Config`] naming `routing_key`
    /// if the routing key holds control characters, [`Error::Json`] if it cannot be
    /// serialized.
    pub fn into_new_event(self) -> Result<NewEvent> {
        self.into_new_event_traced(crate::trace::current)
    }

    /// [`into_new_event`](Self::into_new_event), taking the current trace context from
    /// `current` when the message states none (a bulk publish reads it once).
    pub(crate) fn into_new_event_traced(
        mut self,
        current: impl FnOnce() -> Option<String>,
    ) -> Result<NewEvent> {
        validate(&self.payload)?;
        check_priority::<E>(self.options.priority)?;
        if let Some(key) = &self.options.routing_key {
            check_name("routing_key", key).map_err(Error::Config)?;
        }
        if let Some(key) = &self.options.ordering_key {
            check_ordering_key::<E>(key)?;
        }
        match &self.options.traceparent {
            Some(traceparent) => crate::trace::check::<E>(traceparent)?,
            None => self.options.traceparent = current(),
        }
        Ok(NewEvent {
            event_type: E::NAME.to_owned(),
            payload: serde_json::to_string(&self.payload)?,
            routing_key: self.options.routing_key,
            delay: match self.options.scheduled_at {
                Some(at) => (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO),
                None => self.options.delay,
            },
            idempotency_key: self.options.idempotency_key,
            fairness_key: self.options.fairness_key,
            correlation_id: self.options.correlation_id,
            causation_id: self.options.causation_id,
            priority: self.options.priority,
            ordering_key: self.options.ordering_key,
            traceparent: self.options.traceparent,
        })
    }
}

/// The longest ordering key [`Message::ordering_key`] accepts, in bytes.
pub(crate) const MAX_ORDERING_KEY_LEN: usize = 256;

/// Refuse an empty or over-long ordering key, naming `ordering_key`.
fn check_ordering_key<E: Event>(key: &str) -> Result<()> {
    let problem = if key.is_empty() {
        "must not be empty".to_owned()
    } else if key.len() > MAX_ORDERING_KEY_LEN {
        format!(
            "must be at most {MAX_ORDERING_KEY_LEN} bytes, got {}",
            key.len()
        )
    } else {
        return Ok(());
    };
    let mut report = garde::Report::new();
    report.append(garde::Path::new("ordering_key"), garde::Error::new(problem));
    Err(Error::Validation {
        event_type: E::NAME,
        report,
    })
}

/// Refuse a priority outside [`PRIORITY_MIN`]..=[`PRIORITY_MAX`], naming `priority`.
fn check_priority<E: Event>(priority: i16) -> Result<()> {
    if (PRIORITY_MIN..=PRIORITY_MAX).contains(&priority) {
        return Ok(());
    }
    let mut report = garde::Report::new();
    report.append(
        garde::Path::new("priority"),
        garde::Error::new(format!(
            "must be within {PRIORITY_MIN}..={PRIORITY_MAX}, got {priority}"
        )),
    );
    Err(Error::Validation {
        event_type: E::NAME,
        report,
    })
}

impl<E: Event> From<E> for Message<E> {
    fn from(payload: E) -> Self {
        Message::new(payload)
    }
}

/// A validated, serialized event ready to insert: what the [`Store`](crate::Store) SPI takes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event type (`Event::NAME`).
    pub event_type: String,
    /// The payload as JSON text.
    pub payload: String,
    /// The routing key, if any.
    pub routing_key: Option<String>,
    /// Not claimable before this delay has passed.
    pub delay: Duration,
    /// At most one event per namespace with this key.
    pub idempotency_key: Option<String>,
    /// The fairness group; `None` is the default group.
    pub fairness_key: Option<String>,
    /// The chain this event belongs to.
    pub correlation_id: Option<Uuid>,
    /// The event whose handler emitted this one.
    pub causation_id: Option<EventId>,
    /// Claim order within the queue (see [`Message::priority`]), already checked to be
    /// within [`PRIORITY_MIN`]..=[`PRIORITY_MAX`].
    pub priority: i16,
    /// Handled after the queue's earlier events with this key (see
    /// [`Message::ordering_key`]).
    pub ordering_key: Option<String>,
    /// The W3C trace context the event was published in (see [`Message::traceparent`]).
    pub traceparent: Option<String>,
}
