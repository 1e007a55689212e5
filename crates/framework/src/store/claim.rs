//! What both backends' claims share: the claimed row and how it becomes a [`ClaimedEvent`].

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ClaimedEvent;
use crate::event::EventId;

/// A row either backend's claim returns. `C` is a correlation id and `T` an instant as the
/// backend returns them (`uuid` and `timestamptz` on Postgres, text and integer milliseconds
/// on SQLite).
#[derive(sqlx::FromRow)]
pub(crate) struct ClaimRow<C, T> {
    /// The event's id (SQLite orders its batch by it).
    pub(super) id: i64,
    payload: String,
    attempts: i32,
    fairness_key: String,
    causation_id: Option<i64>,
    correlation_id: Option<C>,
    created_at: T,
    last_error: Option<String>,
}

impl<C, T> ClaimRow<C, T> {
    /// The claimed event, with the backend's correlation id and instant decoded by
    /// `correlation` and `instant`.
    pub(crate) fn into_claimed(
        self,
        correlation: impl FnOnce(C) -> Option<Uuid>,
        instant: impl FnOnce(T) -> DateTime<Utc>,
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
            last_error: self.last_error,
        }
    }
}
