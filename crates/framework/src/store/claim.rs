//! The claim's types: the [`ClaimRequest`] a worker sends, the [`ClaimedEvent`]s it gets
//! back, and the row both backends' claims return.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{EventId, Queue};

/// A claim request: up to `limit` due events of `queue` for `worker`.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// The queue to claim from.
    pub queue: &'a Queue,
    /// The claiming worker's id, recorded as `claimed_by`.
    pub worker: &'a str,
    /// The most events to claim.
    pub limit: usize,
    /// How long the claim is held before the reaper may return it.
    pub lease: Duration,
    /// Round-robin position: fairness groups after this key are served first, then the rest.
    pub fairness_cursor: &'a str,
    /// Events due for longer than this are claimed first, oldest first, whatever their
    /// priority (the handler's [`PRIORITY_AGING`](crate::EventHandler::PRIORITY_AGING); see
    /// [`Message::priority`](crate::Message::priority) for the whole rule).
    pub priority_aging: Duration,
}

/// The longest priority aging a store applies: 100 years (never, in practice), so an
/// aging of `Duration::MAX` stays within every backend's instant range.
pub(crate) const MAX_PRIORITY_AGING: Duration = Duration::from_secs(100 * 365 * 86_400);

/// An event handed to a worker by [`Store::claim`](super::Store::claim).
#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    /// The event's id.
    pub id: EventId,
    /// The payload as JSON text, decoded straight into the handler's event type.
    pub payload: String,
    /// How many times the event has been claimed, this claim included.
    pub attempts: u32,
    /// The event's fairness group (`""` for the default group).
    pub fairness_key: String,
    /// The event whose handler emitted this one.
    pub causation_id: Option<EventId>,
    /// The chain this event belongs to.
    pub correlation_id: Option<Uuid>,
    /// When the event was published.
    pub created_at: DateTime<Utc>,
    /// When the event became due: the later of its `available_at` (delay, schedule or
    /// retry) and `created_at`. Its wait time is the claim's instant minus this.
    pub due_at: DateTime<Utc>,
    /// The error of the previous attempt, if any.
    pub last_error: Option<String>,
    /// The event's ordering key (see [`Message::ordering_key`](crate::Message::ordering_key)).
    pub ordering_key: Option<String>,
    /// The W3C trace context it was published in (see
    /// [`Message::traceparent`](crate::Message::traceparent)).
    pub traceparent: Option<String>,
}

/// A row either backend's claim returns. `C` is a correlation id and `T` an instant as the
/// backend returns them (`uuid` and `timestamptz` on Postgres, text and integer milliseconds
/// on SQLite). SQLite reads them back as one JSON array of arrays, in field order.
#[derive(sqlx::FromRow)]
#[cfg_attr(feature = "sqlite", derive(serde::Deserialize))]
pub(crate) struct ClaimRow<C, T> {
    /// The event's id (SQLite orders its batch by it).
    pub(super) id: i64,
    payload: String,
    attempts: i32,
    fairness_key: String,
    causation_id: Option<i64>,
    correlation_id: Option<C>,
    created_at: T,
    due_at: T,
    last_error: Option<String>,
    ordering_key: Option<String>,
    traceparent: Option<String>,
}

impl<C, T> ClaimRow<C, T> {
    /// The claimed event, with the backend's correlation id and instant decoded by
    /// `correlation` and `instant`.
    pub(crate) fn into_claimed(
        self,
        correlation: impl FnOnce(C) -> Option<Uuid>,
        instant: impl Fn(T) -> DateTime<Utc>,
    ) -> ClaimedEvent {
        ClaimedEvent {
            id: EventId(self.id),
            // text that is not the event type's JSON is dead-lettered by the decode
            payload: self.payload,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            fairness_key: self.fairness_key,
            causation_id: self.causation_id.map(EventId),
            correlation_id: self.correlation_id.and_then(correlation),
            created_at: instant(self.created_at),
            due_at: instant(self.due_at),
            last_error: self.last_error,
            ordering_key: self.ordering_key,
            traceparent: self.traceparent,
        }
    }
}
