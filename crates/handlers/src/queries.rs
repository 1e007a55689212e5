//! The read side of the pipeline: daily counts, summary, event types and raw events, each
//! scoped to one namespace.
//!
//! Bounds are checked before any query runs, and an [`Error::InvalidQuery`] message names
//! the parameter at fault (`limit`, `from`, `to`), so the API can return it as is.
//! Pages are keyset-paginated: pass the last row of a page as the next page's `after`.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use sqlx::query::QueryAs;
use sqlx::{Database, Encode, FromRow, Type};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Most rows one page returns.
const MAX_LIMIT: u32 = 1000;
/// Widest day range of the rollup queries, both ends included.
const MAX_DAYS: i64 = 366;
/// Widest window of [`raw_events`](crate::raw_events).
const MAX_RAW_WINDOW_DAYS: i64 = 31;

/// Filters and page of [`daily_counts`](crate::daily_counts).
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

impl DailyCountQuery {
    /// Check the bounds every backend enforces: `limit` and the day range.
    pub(crate) fn check(&self) -> Result<()> {
        check_limit(self.limit)?;
        check_days(self.from, self.to)
    }

    /// Bind the parameters of `query_daily_counts.sql` (either backend's) to `query`, in its
    /// order: namespace, from, to, event type, source, the position the page starts after
    /// (day, event type, source), limit. The first page starts after a position before
    /// every row of the range, so the keyset comparison is always a bound.
    pub(crate) fn bind<'q, DB: Database, O>(
        &self,
        query: QueryAs<'q, DB, O, DB::Arguments<'q>>,
    ) -> QueryAs<'q, DB, O, DB::Arguments<'q>>
    where
        String: Encode<'q, DB> + Type<DB>,
        Option<String>: Encode<'q, DB> + Type<DB>,
        NaiveDate: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
    {
        let after = self.after.clone().unwrap_or_else(|| DailyCursor {
            day: self.from.pred_opt().unwrap_or(self.from),
            event_type: String::new(),
            source: String::new(),
        });
        query
            .bind(self.namespace.clone())
            .bind(self.from)
            .bind(self.to)
            .bind(self.event_type.clone())
            .bind(self.source.clone())
            .bind(after.day)
            .bind(after.event_type)
            .bind(after.source)
            .bind(i64::from(self.limit))
    }
}

/// A position in [`daily_counts`](crate::daily_counts) order: (day, event type, source).
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

/// A row of `query_daily_counts.sql`: day, event type, source, count.
pub(crate) type DailyRow = (NaiveDate, String, String, i64);

impl DailyCount {
    /// The count of a [`DailyRow`].
    pub(crate) fn from_row((day, event_type, source, count): DailyRow) -> Self {
        Self {
            day,
            event_type,
            source,
            count,
        }
    }
}

/// Totals over a day range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Events in the range.
    pub total: i64,
    /// Distinct actors in the range.
    pub unique_actors: i64,
}

impl Summary {
    /// The totals of a `query_summary.sql` row (either backend's): total, unique actors.
    pub(crate) fn from_row((total, unique_actors): (i64, i64)) -> Self {
        Self {
            total,
            unique_actors,
        }
    }
}

/// One event type and how many events it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventTypeCount {
    /// The event type.
    pub event_type: String,
    /// Events of that type in the range.
    pub count: i64,
}

impl EventTypeCount {
    /// The count of a `query_event_types.sql` row (either backend's): event type, count.
    pub(crate) fn from_row((event_type, count): (String, i64)) -> Self {
        Self { event_type, count }
    }
}

/// Window, filter and page of [`raw_events`](crate::raw_events).
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

impl RawEventQuery {
    /// Check the bounds every backend enforces: `limit` and the window.
    pub(crate) fn check(&self) -> Result<()> {
        check_limit(self.limit)?;
        check_window(self.from, self.to)
    }

    /// The position the page starts after: `after`, or for the first page a position just
    /// before the window.
    pub(crate) fn start(&self) -> RawCursor {
        self.after.unwrap_or(RawCursor {
            timestamp: self
                .from
                .checked_sub_signed(TimeDelta::microseconds(1))
                .unwrap_or(self.from),
            event_id: Uuid::nil(),
        })
    }
}

/// A position in [`raw_events`](crate::raw_events) order: (timestamp, event id).
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

/// A row of `query_raw_events.sql` as Postgres returns it (SQLite's instant and attributes
/// decode to these first): event id, type, actor, source, timestamp, attributes.
pub(crate) type RawRow = (
    Uuid,
    String,
    String,
    String,
    DateTime<Utc>,
    serde_json::Value,
);

impl RawEvent {
    /// The event of a [`RawRow`].
    pub(crate) fn from_row(row: RawRow) -> Self {
        let (event_id, event_type, actor_id, source, ts, attributes) = row;
        Self {
            event_id,
            event_type,
            actor_id,
            source,
            timestamp: ts,
            attributes,
        }
    }
}

/// A page size of 1..=1000.
fn check_limit(limit: u32) -> Result<()> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(Error::InvalidQuery(format!(
            "limit must be 1..={MAX_LIMIT}, got {limit}"
        )))
    }
}

/// A day range `from..=to` of the rollup queries.
fn check_days(from: NaiveDate, to: NaiveDate) -> Result<()> {
    if from > to {
        return Err(Error::InvalidQuery(format!("from {from} is after to {to}")));
    }
    if (to - from).num_days() + 1 > MAX_DAYS {
        return Err(Error::InvalidQuery(format!(
            "window from..to is wider than {MAX_DAYS} days"
        )));
    }
    Ok(())
}

/// `sql`, a rollup query of either backend (`query_summary.sql`, `query_event_types.sql`),
/// with its parameters bound in their order: namespace, first day, last day; once the day
/// range is checked.
pub(crate) fn days_query<'q, DB: Database, O>(
    sql: &'q str,
    namespace: &'q str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<QueryAs<'q, DB, O, DB::Arguments<'q>>>
where
    O: for<'r> FromRow<'r, DB::Row>,
    &'q str: Encode<'q, DB> + Type<DB>,
    NaiveDate: Encode<'q, DB> + Type<DB>,
{
    check_days(from, to)?;
    Ok(sqlx::query_as(sql).bind(namespace).bind(from).bind(to))
}

/// A window `[from, to)` of [`raw_events`](crate::raw_events).
fn check_window(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<()> {
    if to <= from {
        return Err(Error::InvalidQuery(format!(
            "to {} must be after from {}",
            to.to_rfc3339(),
            from.to_rfc3339()
        )));
    }
    if to - from > TimeDelta::days(MAX_RAW_WINDOW_DAYS) {
        return Err(Error::InvalidQuery(format!(
            "window from..to is wider than {MAX_RAW_WINDOW_DAYS} days"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(r: Result<()>) -> String {
        match r {
            Err(Error::InvalidQuery(msg)) => msg,
            other => panic!("expected InvalidQuery, got {other:?}"),
        }
    }

    #[test]
    fn limit_bounds_name_the_limit() {
        assert!(check_limit(1).is_ok() && check_limit(1000).is_ok());
        assert!(invalid(check_limit(0)).contains("limit must be 1..=1000"));
        assert!(invalid(check_limit(1001)).contains("limit"));
    }

    #[test]
    fn day_ranges_are_inclusive_up_to_366_days() {
        let from: NaiveDate = "2026-01-01".parse().unwrap();
        assert!(check_days(from, from).is_ok());
        assert!(check_days(from, "2027-01-01".parse().unwrap()).is_ok());
        assert!(invalid(check_days(from, "2027-01-02".parse().unwrap()))
            .contains("wider than 366 days"));
        assert!(invalid(check_days(from, "2025-12-31".parse().unwrap())).contains("from"));
    }

    #[test]
    fn raw_windows_are_non_empty_and_at_most_31_days() {
        let from: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(check_window(from, from + TimeDelta::days(31)).is_ok());
        assert!(invalid(check_window(from, from)).contains("to"));
        let wide = invalid(check_window(
            from,
            from + TimeDelta::days(31) + TimeDelta::microseconds(1),
        ));
        assert!(wide.contains("from..to is wider than 31 days"), "{wide}");
    }
}
