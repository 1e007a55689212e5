//! [`RollupHandler`] on SQLite, and its `rebuild_rollups`.

use std::collections::HashSet;

use chrono::NaiveDate;
use conveyor::{Context, HandlerError, SqliteStore, Store};
use serde::Serialize;
use uuid::Uuid;

use super::{micros, store_error};
use crate::raw_store::batch_events;
use crate::rollup::rebuild_window;
use crate::storage_handler::{Records, WriteBatch, Written};
use crate::{RebuildReport, RollupHandler};

const MARK_SEEN: &str = include_str!("sql/rollup_mark_seen.sql");
const ADD_COUNTS: &str = include_str!("sql/rollup_add_counts.sql");
const ADD_ACTORS: &str = include_str!("sql/rollup_add_actors.sql");
const DELETE_COUNTS: &str = include_str!("sql/rollup_delete_counts.sql");
const DELETE_ACTORS: &str = include_str!("sql/rollup_delete_actors.sql");
const DELETE_SEEN: &str = include_str!("sql/rollup_delete_seen.sql");
const REBUILD_SEEN: &str = include_str!("sql/rollup_rebuild_seen.sql");
const REBUILD_COUNTS: &str = include_str!("sql/rollup_rebuild_counts.sql");
const REBUILD_ACTORS: &str = include_str!("sql/rollup_rebuild_actors.sql");

/// The Postgres handler's semantics on SQLite, exact by the same means: in the transaction
/// that completes the batch, the batch's keys go into `analytics_rollup_seen` and only the
/// keys newly inserted there are counted. That transaction holds the database's write lock,
/// so concurrent batches (other workers, other pools on the file) run one after the other;
/// a batch that rolls back leaves neither seen keys nor counts, and one reprocessed after
/// committing counts nothing. Queue, batch size and retries are the handler's on every backend.
impl WriteBatch<SqliteStore> for RollupHandler {
    async fn write(&self, batch: &Records, ctx: &mut Context<'_, SqliteStore>) -> Written {
        let events = batch_events(batch);
        let keys: Vec<Key<'_>> = events
            .iter()
            .map(|(namespace, e)| Key {
                namespace,
                event_id: e.event_id,
                ts: micros(e.timestamp),
            })
            .collect();
        let keys = serde_json::to_string(&keys).map_err(HandlerError::fail)?;
        let db = ctx.db().await?;
        let seen: Vec<(String, Uuid, i64)> = sqlx::query_as(MARK_SEEN)
            .bind(keys)
            .fetch_all(&mut *db)
            .await?;
        let mut fresh: HashSet<(&str, Uuid, i64)> = seen
            .iter()
            .map(|(ns, id, ts)| (ns.as_str(), *id, *ts))
            .collect();
        // each newly seen key once, even if two events of the batch share its microsecond
        let counted: Vec<Counted<'_>> = events
            .iter()
            .filter(|(ns, e)| fresh.remove(&(*ns, e.event_id, micros(e.timestamp))))
            .map(|(namespace, e)| Counted {
                namespace,
                day: e.day(),
                event_type: &e.event_type,
                source: &e.source,
                actor_id: &e.actor_id,
            })
            .collect();
        if !counted.is_empty() {
            let counted = serde_json::to_string(&counted).map_err(HandlerError::fail)?;
            for statement in [ADD_COUNTS, ADD_ACTORS] {
                sqlx::query(statement)
                    .bind(&counted)
                    .execute(&mut *db)
                    .await?;
            }
        }
        tracing::debug!(
            records = batch.len(),
            events = events.len(),
            counted = seen.len(),
            "rollups updated"
        );
        Ok(())
    }
}

/// An event's deduplication key, as [`MARK_SEEN`] reads it.
#[derive(Serialize)]
struct Key<'a> {
    namespace: &'a str,
    event_id: Uuid,
    ts: i64,
}

/// A newly seen event, as [`ADD_COUNTS`] and [`ADD_ACTORS`] read it.
#[derive(Serialize)]
struct Counted<'a> {
    namespace: &'a str,
    day: NaiveDate,
    event_type: &'a str,
    source: &'a str,
    actor_id: &'a str,
}

// Two copies of the rebuild (here and `postgres::rollup`): see the comment there.

/// [`rebuild_rollups`](crate::rebuild_rollups) on SQLite: the same steps in one write
/// transaction, which keeps the rollup handler (every writer) out until it commits; reads
/// go on.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] if `from > to`; database errors (nothing is changed then).
pub(super) async fn rebuild_rollups(
    store: &SqliteStore,
    from: NaiveDate,
    to: NaiveDate,
) -> crate::Result<RebuildReport> {
    let (start, end) = rebuild_window(from, to)?;
    let (start, end) = (micros(start), micros(end));
    let mut tx = store.begin().await.map_err(store_error)?;
    for statement in [DELETE_COUNTS, DELETE_ACTORS] {
        sqlx::query(statement)
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(DELETE_SEEN)
        .bind(start)
        .bind(end)
        .execute(&mut *tx)
        .await?;
    let events = sqlx::query(REBUILD_SEEN)
        .bind(start)
        .bind(end)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    for statement in [REBUILD_COUNTS, REBUILD_ACTORS] {
        sqlx::query(statement)
            .bind(start)
            .bind(end)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await.map_err(store_error)?;
    Ok(RebuildReport::rebuilt(from, to, events))
}
