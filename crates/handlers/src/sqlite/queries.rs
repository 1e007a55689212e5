//! The read side on SQLite: daily counts, summary, event types and raw events, with the
//! Postgres functions' bounds, errors, order and cursors (see [`crate::daily_counts`] and
//! the others for what each returns).

use chrono::NaiveDate;
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{instant, micros};
use crate::queries::{days_query, DailyRow};
use crate::{
    DailyCount, DailyCountQuery, EventTypeCount, RawEvent, RawEventQuery, Result, Summary,
};

const DAILY_COUNTS: &str = include_str!("sql/query_daily_counts.sql");
const SUMMARY: &str = include_str!("sql/query_summary.sql");
const EVENT_TYPES: &str = include_str!("sql/query_event_types.sql");
const RAW_EVENTS: &str = include_str!("sql/query_raw_events.sql");

// Two plain copies with `postgres::queries`: see the comment there.

/// [`crate::daily_counts`] on SQLite. Text compares by code point here, as on a Postgres
/// database with the `C` collation.
pub(super) async fn daily_counts(
    pool: &SqlitePool,
    q: &DailyCountQuery,
) -> Result<Vec<DailyCount>> {
    q.check()?;
    let rows: Vec<DailyRow> = q.bind(sqlx::query_as(DAILY_COUNTS)).fetch_all(pool).await?;
    Ok(rows.into_iter().map(DailyCount::from_row).collect())
}

/// [`crate::summary`] on SQLite.
pub(super) async fn summary(
    pool: &SqlitePool,
    namespace: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Summary> {
    let row = days_query(SUMMARY, namespace, from, to)?
        .fetch_one(pool)
        .await?;
    Ok(Summary::from_row(row))
}

/// [`crate::event_types`] on SQLite.
pub(super) async fn event_types(
    pool: &SqlitePool,
    namespace: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<EventTypeCount>> {
    let query = days_query(EVENT_TYPES, namespace, from, to)?;
    let rows = query.fetch_all(pool).await?;
    Ok(rows.into_iter().map(EventTypeCount::from_row).collect())
}

/// [`crate::raw_events`] on SQLite. Attributes come back as the JSON object stored.
pub(super) async fn raw_events(pool: &SqlitePool, q: &RawEventQuery) -> Result<Vec<RawEvent>> {
    q.check()?;
    let after = q.start();
    let rows: Vec<StoredRawRow> = sqlx::query_as(RAW_EVENTS)
        .bind(&q.namespace)
        .bind(micros(q.from))
        .bind(micros(q.to))
        .bind(q.event_type.as_deref())
        .bind(micros(after.timestamp))
        .bind(after.event_id)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, event_type, actor, source, ts, attributes)| {
            RawEvent::from_row((id, event_type, actor, source, instant(ts), attributes.0))
        })
        .collect())
}

/// A row of `query_raw_events.sql` as SQLite returns it: the core's `RawRow` with the instant
/// as integer microseconds and the attributes as JSON text.
type StoredRawRow = (
    Uuid,
    String,
    String,
    String,
    i64,
    sqlx::types::Json<serde_json::Value>,
);
