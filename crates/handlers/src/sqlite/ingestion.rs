//! The ingestion API's write on SQLite: `PipelineStore::accept`, raw-first.

use chrono::Utc;
use conveyor::{SqliteStore, Store};
use uuid::Uuid;

use super::raw_store::RawRow;
use super::{micros, store_error};
use crate::events::{Backend, EventsReceived};
use crate::ingestion::{distinct, index_records, newly_stored, reports, AcceptReport};
use crate::Result;

const INSERT_EVENTS: &str = include_str!("sql/raw_insert_events.sql");

/// The delay of the records the API publishes on SQLite: 1 ms (its outbox counts whole
/// milliseconds), so the commit wakes no worker. Every wake-up makes the index handlers claim
/// at once, and a claim is a write transaction (a turn of the write lock and an fsync) for a
/// batch of one or two records; polling lets the records of many requests gather into one
/// batch instead ([`POLL_INTERVAL`]).
const UNANNOUNCED: std::time::Duration = std::time::Duration::from_millis(1);

/// How often an idle index handler polls on SQLite, where the API's records wake nobody
/// (see [`UNANNOUNCED`]): the most an idle pipeline adds to a record's latency there.
pub(super) const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

/// The Postgres accept on SQLite: in one write transaction, the request's events go to
/// `events_raw` (the primary key skips those already stored) and the index records of the
/// newly stored ones to the outbox; the JSON of the rows is built before the write lock.
pub(super) async fn accept(
    store: &SqliteStore,
    backends: &[Backend],
    batches: &[EventsReceived],
) -> Result<Vec<AcceptReport>> {
    let events = distinct(batches);
    let raw = backends.contains(&Backend::Raw);
    let rows = if raw {
        let rows: Vec<RawRow<'_>> = batches
            .iter()
            .zip(&events)
            .flat_map(|(batch, events)| events.iter().map(|e| RawRow::new(&batch.namespace, e)))
            .collect();
        serde_json::to_string(&rows).map_err(conveyor::Error::from)?
    } else {
        String::new()
    };
    let mut tx = store.begin().await.map_err(store_error)?;
    let fresh = if raw {
        let stored: Vec<(String, Uuid, i64)> = sqlx::query_as(INSERT_EVENTS)
            .bind(rows)
            .bind(micros(Utc::now()))
            .fetch_all(&mut *tx)
            .await?;
        newly_stored(batches, &events, stored)
    } else {
        events
    };
    let records = index_records(backends, batches, &fresh);
    if !records.is_empty() {
        let quiet = records.into_iter().map(|m| m.delay(UNANNOUNCED));
        store.publish_batch_in(&mut tx, quiet).await?;
    }
    tx.commit().await.map_err(store_error)?;
    Ok(reports(batches, &fresh))
}
