//! What both backends' operator controls share: the rows of the stats and dead-letter
//! queries, and how they become [`QueueStats`] and [`DeadLetter`]s.

use chrono::{DateTime, Utc};

use super::{attempt_errors, queue, DeadLetter, QueueStats};
use crate::event::EventId;

/// A row of either backend's `stats.sql`.
#[derive(sqlx::FromRow)]
pub(crate) struct StatsRow {
    event_type: String,
    routing_key: String,
    pending: i64,
    due: i64,
    in_flight: i64,
    retrying: i64,
    dead: i64,
    delivered: i64,
    cancelled: i64,
    oldest_due_age_secs: f64,
    paused: bool,
}

impl From<StatsRow> for QueueStats {
    fn from(r: StatsRow) -> Self {
        QueueStats {
            queue: queue(r.event_type, r.routing_key),
            pending: r.pending,
            due: r.due,
            in_flight: r.in_flight,
            retrying: r.retrying,
            dead: r.dead,
            delivered: r.delivered,
            cancelled: r.cancelled,
            oldest_due_age_secs: r.oldest_due_age_secs,
            paused: r.paused,
        }
    }
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
