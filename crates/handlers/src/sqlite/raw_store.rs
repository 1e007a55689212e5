//! [`RawStoreHandler`] on SQLite: `IndexRecord[raw]` → `events_raw`.

use chrono::Utc;
use conveyor::{Context, HandlerError, SqliteStore};
use serde::Serialize;
use uuid::Uuid;

use super::micros;
use crate::raw_store::batch_events;
use crate::storage_handler::{Records, WriteBatch, Written};
use crate::RawStoreHandler;

const INSERT_EVENTS: &str = include_str!("sql/raw_insert_events.sql");

/// The Postgres handler's semantics on SQLite: the batch's events, first occurrence of each
/// key only, go to `events_raw` in one statement in the transaction that completes the
/// batch; the primary key `(namespace, event_id, ts)` skips every event already stored.
/// Queue, batch size and retries are the handler's on every backend.
impl WriteBatch<SqliteStore> for RawStoreHandler {
    async fn write(&self, batch: &Records, ctx: &mut Context<'_, SqliteStore>) -> Written {
        let rows: Vec<RawRow<'_>> = batch_events(batch)
            .into_iter()
            .map(|(namespace, e)| RawRow::new(namespace, e))
            .collect();
        let rows = serde_json::to_string(&rows).map_err(HandlerError::fail)?;
        let stored = sqlx::query(INSERT_EVENTS)
            .bind(rows)
            .bind(micros(Utc::now()))
            .execute(ctx.db().await?)
            .await?
            .rows_affected();
        tracing::debug!(records = batch.len(), stored, "raw events stored");
        Ok(())
    }
}

/// One event as [`INSERT_EVENTS`] reads it from the JSON array.
#[derive(Serialize)]
pub(super) struct RawRow<'a> {
    namespace: &'a str,
    event_id: Uuid,
    ts: i64,
    event_type: &'a str,
    actor_id: &'a str,
    source: &'a str,
    attributes: &'a serde_json::Map<String, serde_json::Value>,
}

impl<'a> RawRow<'a> {
    /// `event` of `namespace` as the inserts read it.
    pub(super) fn new(namespace: &'a str, e: &'a crate::IngestedEvent) -> Self {
        RawRow {
            namespace,
            event_id: e.event_id,
            ts: micros(e.timestamp),
            event_type: &e.event_type,
            actor_id: &e.actor_id,
            source: &e.source,
            attributes: &e.attributes,
        }
    }
}
