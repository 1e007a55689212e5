//! The read side on Postgres: daily counts, summary, event types and raw events (their
//! types and bounds are the core's, see `crate::queries`).

use chrono::NaiveDate;

use crate::queries::{days_query, DailyRow, RawRow};
use crate::{DailyCount, DailyCountQuery, EventTypeCount, RawEvent, RawEventQuery, Summary};

const DAILY_COUNTS: &str = include_str!("sql/query_daily_counts.sql");
const SUMMARY: &str = include_str!("sql/query_summary.sql");
const EVENT_TYPES: &str = include_str!("sql/query_event_types.sql");
const RAW_EVENTS: &str = include_str!("sql/query_raw_events.sql");

// These read functions and `sqlite::queries`' are two plain copies of a few lines each: the
// same steps over different pools and SQL (their checks, binds and rows are the core's); a
// generic over sqlx databases would need a bound per bound type, longer than the copies.

/// Daily counts in (day, event type, source) order, one page of at most `q.limit` rows
/// after `q.after`.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] when `limit` is not 1..=1000, `from` is after `to`, or
/// the range spans more than 366 days; database errors.
pub async fn daily_counts(
    pool: &sqlx::PgPool,
    q: &DailyCountQuery,
) -> crate::Result<Vec<DailyCount>> {
    q.check()?;
    let rows: Vec<DailyRow> = q.bind(sqlx::query_as(DAILY_COUNTS)).fetch_all(pool).await?;
    Ok(rows.into_iter().map(DailyCount::from_row).collect())
}

/// Total events and distinct actors of `namespace` over days `from..=to`; an actor active
/// on several days counts once.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] when `from` is after `to` or the range spans more than
/// 366 days; database errors.
pub async fn summary(
    pool: &sqlx::PgPool,
    namespace: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> crate::Result<Summary> {
    let row = days_query(SUMMARY, namespace, from, to)?
        .fetch_one(pool)
        .await?;
    Ok(Summary::from_row(row))
}

/// The event types of `namespace` over days `from..=to`, most frequent first, ties in name
/// order.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] when `from` is after `to` or the range spans more than
/// 366 days; database errors.
pub async fn event_types(
    pool: &sqlx::PgPool,
    namespace: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> crate::Result<Vec<EventTypeCount>> {
    let query = days_query(EVENT_TYPES, namespace, from, to)?;
    let rows = query.fetch_all(pool).await?;
    Ok(rows.into_iter().map(EventTypeCount::from_row).collect())
}

/// Raw events of the window `[q.from, q.to)` in (timestamp, event id) order, one page of at
/// most `q.limit` events after `q.after`.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] for a reversed or empty window, one wider than 31 days, or a
/// `limit` outside 1..=1000; database errors.
pub async fn raw_events(pool: &sqlx::PgPool, q: &RawEventQuery) -> crate::Result<Vec<RawEvent>> {
    q.check()?;
    let after = q.start();
    let rows: Vec<RawRow> = sqlx::query_as(RAW_EVENTS)
        .bind(&q.namespace)
        .bind(q.from)
        .bind(q.to)
        .bind(q.event_type.as_deref())
        .bind(after.timestamp)
        .bind(after.event_id)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(RawEvent::from_row).collect())
}
