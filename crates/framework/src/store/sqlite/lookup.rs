//! Looking events up by id or filter (see `store::lookup`). Mirrors `postgres::lookup`; two
//! copies, as the bound types differ.

use sqlx::SqlitePool;
use uuid::Uuid;

use super::{instant, now_ms};
use crate::error::Result;
use crate::event::Queue;
use crate::store::lookup::{Decode, EventRow};
use crate::store::{EventFilter, EventPage};

const EVENTS: &str = include_str!("sql/events.sql");

const DECODE: Decode<String, String, i64> = Decode {
    payload: |p| serde_json::from_str(&p).unwrap_or(serde_json::Value::String(p)),
    correlation: |c| Uuid::parse_str(&c).ok(),
    instant,
};

/// A page of the events `filter` selects.
pub(super) async fn events(
    pool: &SqlitePool,
    namespace: &str,
    filter: &EventFilter,
) -> Result<EventPage> {
    let limit = filter.page_size()?;
    let q = filter.queue.as_ref();
    let rows: Vec<EventRow<String, String, i64>> = sqlx::query_as(EVENTS)
        .bind(namespace)
        .bind(q.map(|q| q.event_type.as_str()))
        .bind(q.map(Queue::routing_key_str))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.created_from.map(|t| t.timestamp_millis()))
        .bind(filter.created_until.map(|t| t.timestamp_millis()))
        .bind(filter.after.map_or(0, |id| id.0))
        .bind(filter.up_to.map_or(i64::MAX, |id| id.0))
        .bind(limit)
        .bind(now_ms())
        .fetch_all(pool)
        .await?;
    let events = rows.into_iter().map(|r| r.into_record(&DECODE)).collect();
    Ok(EventPage::new(events, limit))
}
