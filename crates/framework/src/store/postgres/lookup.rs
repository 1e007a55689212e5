//! Looking events up by id or filter (see `store::lookup`). Mirrors `sqlite::lookup`; two
//! copies, as the bound types differ.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Result;
use crate::event::Queue;
use crate::store::lookup::{Decode, EventRow};
use crate::store::{EventFilter, EventPage};

const EVENTS: &str = include_str!("sql/events.sql");

const DECODE: Decode<serde_json::Value, Uuid, DateTime<Utc>> = Decode {
    payload: |p| p,
    correlation: Some,
    instant: |t| t,
};

/// A page of the events `filter` selects.
pub(super) async fn events(
    pool: &PgPool,
    namespace: &str,
    filter: &EventFilter,
) -> Result<EventPage> {
    let limit = filter.page_size()?;
    let q = filter.queue.as_ref();
    let rows: Vec<EventRow<serde_json::Value, Uuid, DateTime<Utc>>> = sqlx::query_as(EVENTS)
        .bind(namespace)
        .bind(q.map(|q| q.event_type.as_str()))
        .bind(q.map(Queue::routing_key_str))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.created_from)
        .bind(filter.created_until)
        .bind(filter.after.map_or(0, |id| id.0))
        .bind(filter.up_to.map_or(i64::MAX, |id| id.0))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let events = rows.into_iter().map(|r| r.into_record(&DECODE)).collect();
    Ok(EventPage::new(events, limit))
}
