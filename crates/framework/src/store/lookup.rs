//! Looking events up: one by id, or a filtered page, in every state.
//!
//! The types here are backend-neutral; each backend runs its own `event.sql` / `events.sql`
//! and hands the rows to [`EventRow::into_record`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{attempt_errors, queue, AttemptError};
use crate::event::{EventId, Queue};

/// Where an event is in its life, as [`Store::event`](super::Store::event) reports it and
/// [`EventFilter::status`] selects it.
///
/// The stored states are pending, claimed, delivered, dead and cancelled; a pending event is
/// reported as `Scheduled` when it is not due yet and has never been tried, as `Retrying`
/// once an attempt failed (due or not), and as `Pending` otherwise; a claimed one as
/// `Running`. River calls these available, scheduled, retryable, running, completed,
/// discarded and cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Due now and never tried.
    Pending,
    /// Not due yet (a delay or `scheduled_at`), never tried.
    Scheduled,
    /// Held back behind an earlier unfinished event of its ordering key (see
    /// [`Message::ordering_key`](crate::Message::ordering_key)).
    Waiting,
    /// Failed at least once and waiting for its next attempt.
    Retrying,
    /// Claimed by a worker right now.
    Running,
    /// Handled (kept until the pool's delivered retention passes).
    Delivered,
    /// Dead-lettered.
    Dead,
    /// Cancelled by an operator or a handler: never claimed again unless replayed.
    Cancelled,
}

impl EventStatus {
    /// Every status, in the order of an event's life.
    pub const ALL: [EventStatus; 8] = [
        EventStatus::Pending,
        EventStatus::Scheduled,
        EventStatus::Waiting,
        EventStatus::Retrying,
        EventStatus::Running,
        EventStatus::Delivered,
        EventStatus::Dead,
        EventStatus::Cancelled,
    ];

    /// The status's name, as the CLI and JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Scheduled => "scheduled",
            EventStatus::Waiting => "waiting",
            EventStatus::Retrying => "retrying",
            EventStatus::Running => "running",
            EventStatus::Delivered => "delivered",
            EventStatus::Dead => "dead",
            EventStatus::Cancelled => "cancelled",
        }
    }

    /// The status of a row whose `status` column holds `stored` (pending rows are reported
    /// as `Pending` whether due, scheduled or retrying), if it is one.
    pub(crate) fn of_stored(stored: &str) -> Option<Self> {
        match stored {
            "pending" => Some(EventStatus::Pending),
            "claimed" => Some(EventStatus::Running),
            "delivered" => Some(EventStatus::Delivered),
            "dead" => Some(EventStatus::Dead),
            "cancelled" => Some(EventStatus::Cancelled),
            _ => None,
        }
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventStatus {
    type Err = String;

    /// A status by its name; the error lists the valid names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = EventStatus::ALL.iter().map(|st| st.as_str()).collect();
                format!("unknown status {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// One stored event, in whatever state it is, as an operator sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRecord {
    /// The event's id.
    pub id: EventId,
    /// Its queue.
    pub queue: Queue,
    /// Where it is in its life.
    pub status: EventStatus,
    /// The payload as JSON.
    pub payload: serde_json::Value,
    /// How many times it has been claimed.
    pub attempts: u32,
    /// Its priority (see [`Message::priority`](crate::Message::priority)).
    pub priority: i16,
    /// Its fairness group (`""` for the default group).
    pub fairness_key: String,
    /// The ordering key it was published with, if any.
    pub ordering_key: Option<String>,
    /// The idempotency key it was published with, if any.
    pub idempotency_key: Option<String>,
    /// The event whose handler emitted this one.
    pub causation_id: Option<EventId>,
    /// The chain this event belongs to.
    pub correlation_id: Option<Uuid>,
    /// The W3C trace context it was published in (see
    /// [`Message::traceparent`](crate::Message::traceparent)).
    pub traceparent: Option<String>,
    /// When it was published.
    pub created_at: DateTime<Utc>,
    /// When it is (or was) due.
    pub available_at: DateTime<Utc>,
    /// When its row last changed (delivered or dead: when that happened).
    pub updated_at: DateTime<Utc>,
    /// The worker holding it, while running.
    pub claimed_by: Option<String>,
    /// When the running worker's lease expires.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The error of its latest failed attempt.
    pub last_error: Option<String>,
    /// Its last failed attempts (up to five, oldest first).
    pub errors: Vec<AttemptError>,
    /// Why it was cancelled (or why a cancel was requested while it ran).
    pub cancel_reason: Option<String>,
}

/// Which events [`Store::events`](super::Store::events) lists: every field narrows the
/// listing, and the default lists every event of the namespace, oldest id first.
///
/// A listing filters rows in id order, so one with a narrow filter over a large outbox reads
/// many rows to fill a page: it is meant for operators, not for a hot path.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events of this queue.
    pub queue: Option<Queue>,
    /// Only events in this status.
    pub status: Option<EventStatus>,
    /// Only events published at or after this instant.
    pub created_from: Option<DateTime<Utc>>,
    /// Only events published before this instant.
    pub created_until: Option<DateTime<Utc>>,
    /// Only ids after this one: the [`EventPage::next`] of the previous page.
    pub after: Option<EventId>,
    /// Only ids up to and including this one.
    pub up_to: Option<EventId>,
    /// The most events to return: 1 to [`EventFilter::MAX_LIMIT`]; 0 means the default, 50.
    pub limit: usize,
}

impl EventFilter {
    /// The largest page [`Store::events`](super::Store::events) returns.
    pub const MAX_LIMIT: usize = 1_000;

    /// The page size to use: `limit`, or 50 when it is 0.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming `limit` when it is above
    /// [`MAX_LIMIT`](Self::MAX_LIMIT).
    pub(crate) fn page_size(&self) -> crate::Result<i64> {
        match self.limit {
            0 => Ok(50),
            n if n <= Self::MAX_LIMIT => Ok(n as i64),
            n => Err(crate::Error::Config(format!(
                "limit must be at most {}, got {n}",
                Self::MAX_LIMIT
            ))),
        }
    }
}

/// The filter of a lookup by id: the id range `(id - 1, id]`, in any queue and status.
pub(crate) fn by_id(id: EventId) -> EventFilter {
    EventFilter {
        after: Some(EventId(id.0.saturating_sub(1))),
        up_to: Some(id),
        limit: 1,
        ..EventFilter::default()
    }
}

/// A page of [`Store::events`](super::Store::events).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventPage {
    /// The events, oldest id first.
    pub events: Vec<EventRecord>,
    /// The cursor for the next page ([`EventFilter::after`]); `None` when this page was the
    /// last.
    pub next: Option<EventId>,
}

impl EventPage {
    /// A page of `events`, of a listing asked for `limit` of them.
    pub(crate) fn new(events: Vec<EventRecord>, limit: i64) -> Self {
        let full = usize::try_from(limit).is_ok_and(|l| events.len() >= l);
        let next = full.then(|| events.last().map(|e| e.id)).flatten();
        EventPage { events, next }
    }
}

/// A row of either backend's `event.sql` / `events.sql`. `P` is the payload, `C` a
/// correlation id and `T` an instant as the backend returns them.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow<P, C, T> {
    id: i64,
    event_type: String,
    routing_key: String,
    status: String,
    payload: P,
    attempts: i32,
    priority: i16,
    fairness_key: String,
    ordering_key: Option<String>,
    idempotency_key: Option<String>,
    causation_id: Option<i64>,
    correlation_id: Option<C>,
    traceparent: Option<String>,
    created_at: T,
    available_at: T,
    updated_at: T,
    claimed_by: Option<String>,
    lease_expires_at: Option<T>,
    last_error: Option<String>,
    /// The error history as JSON text (`errors::text` on Postgres).
    errors: Option<String>,
    cancel_reason: Option<String>,
}

/// How a backend decodes the columns whose types differ.
pub(crate) struct Decode<P, C, T> {
    pub payload: fn(P) -> serde_json::Value,
    pub correlation: fn(C) -> Option<Uuid>,
    pub instant: fn(T) -> DateTime<Utc>,
}

impl<P, C, T> EventRow<P, C, T> {
    /// The record, with the backend's columns decoded by `d`. The statements compute the
    /// reported status (see [`EventStatus`]).
    pub(crate) fn into_record(self, d: &Decode<P, C, T>) -> EventRecord {
        EventRecord {
            id: EventId(self.id),
            queue: queue(self.event_type, self.routing_key),
            status: self.status.parse().unwrap_or(EventStatus::Pending),
            payload: (d.payload)(self.payload),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            priority: self.priority,
            fairness_key: self.fairness_key,
            ordering_key: self.ordering_key,
            idempotency_key: self.idempotency_key,
            causation_id: self.causation_id.map(EventId),
            correlation_id: self.correlation_id.and_then(d.correlation),
            traceparent: self.traceparent,
            created_at: (d.instant)(self.created_at),
            available_at: (d.instant)(self.available_at),
            updated_at: (d.instant)(self.updated_at),
            claimed_by: self.claimed_by,
            lease_expires_at: self.lease_expires_at.map(d.instant),
            last_error: self.last_error,
            errors: attempt_errors(self.errors.as_deref()),
            cancel_reason: self.cancel_reason,
        }
    }
}
