//! [`RollupHandler`] on Postgres, and [`rebuild_rollups`].

use chrono::{DateTime, NaiveDate, Utc};
use conveyor::{Context, PgStore};
use uuid::Uuid;

use crate::raw_store::batch_events;
use crate::rollup::{rebuild_window, RebuildReport, RollupHandler};
use crate::storage_handler::{Records, WriteBatch, Written};

const COUNT_BATCH: &str = include_str!("sql/rollup_count_batch.sql");
const LOCK: &str = include_str!("sql/rollup_lock.sql");
const DELETE_COUNTS: &str = include_str!("sql/rollup_delete_counts.sql");
const DELETE_ACTORS: &str = include_str!("sql/rollup_delete_actors.sql");
const DELETE_SEEN: &str = include_str!("sql/rollup_delete_seen.sql");
const REBUILD_SEEN: &str = include_str!("sql/rollup_rebuild_seen.sql");
const REBUILD_COUNTS: &str = include_str!("sql/rollup_rebuild_counts.sql");
const REBUILD_ACTORS: &str = include_str!("sql/rollup_rebuild_actors.sql");

impl WriteBatch<PgStore> for RollupHandler {
    async fn write(&self, batch: &Records, ctx: &mut Context<'_, PgStore>) -> Written {
        let events = batch_events(batch);
        let n = events.len();
        let (mut namespaces, mut ids, mut timestamps) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut types, mut actors, mut sources) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (namespace, event) in events {
            namespaces.push(namespace);
            ids.push(event.event_id);
            timestamps.push(event.timestamp);
            types.push(event.event_type.as_str());
            actors.push(event.actor_id.as_str());
            sources.push(event.source.as_str());
        }
        let counted: i64 = sqlx::query_scalar(COUNT_BATCH)
            .bind(namespaces)
            .bind::<Vec<Uuid>>(ids)
            .bind::<Vec<DateTime<Utc>>>(timestamps)
            .bind(types)
            .bind(actors)
            .bind(sources)
            .fetch_one(ctx.db().await?)
            .await?;
        tracing::debug!(
            records = batch.len(),
            events = n,
            counted,
            "rollups updated"
        );
        Ok(())
    }
}

// Two copies of the rebuild (here and `sqlite::rollup`): the same steps, but Postgres locks the
// tables and binds `timestamptz`, SQLite takes the write lock and binds microseconds.

/// Recompute the rollups of days `from..=to` (UTC) from `events_raw`.
///
/// In one transaction that locks the rollup tables against the [`RollupHandler`] (reads go
/// on): forget the days' counts, actors and seen keys, then count every event `events_raw`
/// holds in those days and mark it seen. Use it to repair counts, or after changing what
/// the raw store keeps.
///
/// **Known edge**: a rebuild counts only what `events_raw` holds at that moment. An event
/// the rollup already counted but the raw store has not yet stored (its `raw` record still
/// queued) is forgotten and never counted again; an event stored but not yet counted is
/// counted now and skipped by the handler later. Rebuild when the `raw` queue is drained,
/// and not for days past the partition retention, whose raw events are gone.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] if `from > to`; database errors (nothing is changed then).
pub async fn rebuild_rollups(
    pool: &sqlx::PgPool,
    from: NaiveDate,
    to: NaiveDate,
) -> crate::Result<RebuildReport> {
    let (start, end) = rebuild_window(from, to)?;
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK).execute(&mut *tx).await?;
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
    tx.commit().await?;
    Ok(RebuildReport::rebuilt(from, to, events))
}
