//! What both backends' operator controls share: [`QueueStats`] and [`DeadLetter`], and how
//! the rows of the dead-letter query become them (stats rows: `stats_cache`).

use chrono::{DateTime, Utc};

use super::{attempt_errors, queue, AttemptError};
use crate::event::{EventId, Queue};

/// Per-queue counts for operators.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueStats {
    /// The queue.
    pub queue: Queue,
    /// Waiting events, due or delayed.
    pub pending: i64,
    /// Pending events that are due now (and free to run: not waiting behind their key).
    pub due: i64,
    /// Pending events not due yet (delayed, or backing off before a retry), not waiting
    /// behind their key. Counted from an index range over these rows when the queue changed
    /// since the store's last stats read (or one of them came due), so a read costs
    /// O(queues) plus O(scheduled) of the changed queues; every other count is a counter
    /// read.
    pub scheduled: i64,
    /// Pending events waiting behind an earlier event of their ordering key (see
    /// [`Message::ordering_key`](crate::Message::ordering_key)); counted in `pending` too.
    pub waiting: i64,
    /// Ordering keys parked by a dead head ([`DeadHead::Park`](crate::DeadHead::Park)).
    pub parked_keys: i64,
    /// Claimed by a worker right now.
    pub in_flight: i64,
    /// Pending events that already failed at least once.
    pub retrying: i64,
    /// Dead letters.
    pub dead: i64,
    /// Delivered events still within the retention window.
    pub delivered: i64,
    /// Cancelled events still within the retention window (pruned like delivered ones).
    pub cancelled: i64,
    /// Events ever published to the queue (since the counters migration; it started from the
    /// rows present then). Never lowered.
    pub enqueued_total: i64,
    /// Events ever delivered (marked delivered, or deleted at completion when the retention
    /// is zero). Never lowered, pruning included.
    pub completed_total: i64,
    /// Failed attempts: attempts that ended in a retry or a dead letter (an expired lease
    /// included; snoozes and releases are not failures). Never lowered.
    pub failed_total: i64,
    /// Events ever dead-lettered (a replayed one that dies again counts again). Never lowered.
    pub dead_total: i64,
    /// Age in seconds of the oldest due event, 0 when none is due.
    pub oldest_due_age_secs: f64,
    /// Whether an operator paused the queue's handler.
    pub paused: bool,
    /// The queue's global limit, if its pool recorded one: `in_flight` never exceeds it
    /// (see [`EventHandler::MAX_IN_FLIGHT`](crate::EventHandler::MAX_IN_FLIGHT)).
    pub max_in_flight: Option<u32>,
}

/// A dead-lettered event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    /// The event's id.
    pub id: EventId,
    /// Its queue.
    pub queue: Queue,
    /// The payload as JSON.
    pub payload: serde_json::Value,
    /// How many times it was claimed.
    pub attempts: u32,
    /// Why it died.
    pub last_error: Option<String>,
    /// Its last failed attempts (up to five, oldest first), `last_error`'s among them.
    pub errors: Vec<AttemptError>,
    /// When it was published.
    pub created_at: DateTime<Utc>,
    /// When it died.
    pub died_at: DateTime<Utc>,
}

/// A row of either backend's `dead_letters.sql`. `P` is the payload and `T` an instant as the
/// backend returns them (`jsonb` and `timestamptz` on Postgres, JSON text and integer
/// milliseconds on SQLite).
#[derive(sqlx::FromRow)]
pub(crate) struct DeadRow<P, T> {
    id: i64,
    event_type: String,
    routing_key: String,
    payload: P,
    attempts: i32,
    last_error: Option<String>,
    /// The error history as JSON text (`errors::text` on Postgres).
    errors: Option<String>,
    created_at: T,
    died_at: T,
}

impl<P, T> DeadRow<P, T> {
    /// The dead letter, with the backend's payload and instants decoded by `payload` and
    /// `instant`.
    pub(crate) fn into_dead_letter(
        self,
        payload: impl FnOnce(P) -> serde_json::Value,
        instant: impl Fn(T) -> DateTime<Utc>,
    ) -> DeadLetter {
        DeadLetter {
            id: EventId(self.id),
            queue: queue(self.event_type, self.routing_key),
            payload: payload(self.payload),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            last_error: self.last_error,
            errors: attempt_errors(self.errors.as_deref()),
            created_at: instant(self.created_at),
            died_at: instant(self.died_at),
        }
    }
}
