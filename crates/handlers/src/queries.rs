//! The read side of the pipeline: daily counts, summary, event types and raw events, each
//! scoped to one namespace. (stub: to be written)

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Filters and page of [`daily_counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCountQuery {
    /// The tenant namespace.
    pub namespace: String,
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this source.
    pub source: Option<String>,
    /// Rows after this one (the last row of the previous page).
    pub after: Option<DailyCursor>,
    /// At most this many rows (1..=1000).
    pub limit: u32,
}

/// A position in [`daily_counts`] order: (day, event type, source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCursor {
    /// The row's day.
    pub day: NaiveDate,
    /// The row's event type.
    pub event_type: String,
    /// The row's source.
    pub source: String,
}

/// One row of daily counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyCount {
    /// The UTC day.
    pub day: NaiveDate,
    /// The event type.
    pub event_type: String,
    /// The source.
    pub source: String,
    /// Events of that day, type and source.
    pub count: i64,
}

/// Daily counts in (day, event type, source) order. (stub)
///
/// # Errors
/// [`crate::Error::InvalidQuery`] for bad bounds; database errors.
pub async fn daily_counts(_pool: &sqlx::PgPool, _q: &DailyCountQuery) -> crate::Result<Vec<DailyCount>> {
    todo!()
}

/// Totals over a day range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Events in the range.
    pub total: i64,
    /// Distinct actors in the range.
    pub unique_actors: i64,
}

/// Total events and distinct actors of `namespace` over days `from..=to`. (stub)
///
/// # Errors
/// [`crate::Error::InvalidQuery`] for bad bounds; database errors.
pub async fn summary(
    _pool: &sqlx::PgPool,
    _namespace: &str,
    _from: NaiveDate,
    _to: NaiveDate,
) -> crate::Result<Summary> {
    todo!()
}

/// One event type and how many events it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventTypeCount {
    /// The event type.
    pub event_type: String,
    /// Events of that type in the range.
    pub count: i64,
}

/// The event types of `namespace` over days `from..=to`, most frequent first. (stub)
///
/// # Errors
/// [`crate::Error::InvalidQuery`] for bad bounds; database errors.
pub async fn event_types(
    _pool: &sqlx::PgPool,
    _namespace: &str,
    _from: NaiveDate,
    _to: NaiveDate,
) -> crate::Result<Vec<EventTypeCount>> {
    todo!()
}

/// Window, filter and page of [`raw_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEventQuery {
    /// The tenant namespace.
    pub namespace: String,
    /// Window start, inclusive.
    pub from: DateTime<Utc>,
    /// Window end, exclusive.
    pub to: DateTime<Utc>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Events after this position.
    pub after: Option<RawCursor>,
    /// At most this many events (1..=1000).
    pub limit: u32,
}

/// A position in [`raw_events`] order: (timestamp, event id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawCursor {
    /// The event's timestamp.
    pub timestamp: DateTime<Utc>,
    /// The event's id.
    pub event_id: Uuid,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawEvent {
    /// The event's id.
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// The actor.
    pub actor_id: String,
    /// The source.
    pub source: String,
    /// The event's timestamp.
    pub timestamp: DateTime<Utc>,
    /// The attributes.
    pub attributes: serde_json::Value,
}

/// Raw events of a window in (timestamp, event id) order. (stub)
///
/// # Errors
/// [`crate::Error::InvalidQuery`] for a reversed window, one wider than 31 days, or a bad limit; database errors.
pub async fn raw_events(_pool: &sqlx::PgPool, _q: &RawEventQuery) -> crate::Result<Vec<RawEvent>> {
    todo!()
}
