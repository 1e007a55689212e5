//! Operator controls: pause and resume, stats, dead letters.
//!
//! Mirrors `sqlite::admin` op for op; two copies, as the pools and bound types differ (the
//! rows they return are decoded once, in `store::admin` and `store::stats_cache`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::raw_ids;
use crate::error::Result;
use crate::event::{EventId, Queue};
use crate::store::admin::DeadRow;
use crate::store::stats_cache::{CounterRow, StatsCache};
use crate::store::{DeadLetter, QueueStats};

const PAUSE: &str = include_str!("sql/pause.sql");
const RESUME: &str = include_str!("sql/resume.sql");
const STATS: &str = include_str!("sql/stats.sql");
const DEAD_LETTERS: &str = include_str!("sql/dead_letters.sql");
const REPLAY: &str = include_str!("sql/replay.sql");
const PURGE_DEAD: &str = include_str!("sql/purge_dead.sql");

/// A stats read that summed at least this many deltas starts a compaction in the
/// background (between the pools' maintenance ticks, and without a pool, the deltas of a
/// busy queue would otherwise grow every read). A read's cost grows with the deltas it
/// sums: 1,000 took 0.8 ms of a read here, so the bound is low.
const COMPACT_AFTER_STATS: i64 = 100;

/// Tells the stats cache its read-started compaction is over when dropped, however it ended.
struct Compacted(Arc<StatsCache>);

impl Drop for Compacted {
    fn drop(&mut self) {
        self.0.compacted();
    }
}

/// Fold the committed counter deltas into the base rows (see the counters migration);
/// returns how many deltas went, 0 when another compaction is running.
pub(super) async fn compact_counters(pool: &PgPool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("select conveyor_compact_counts()")
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Every queue's stats in one statement (one snapshot): the base counter rows compacted
/// since this store's last read, the deltas, and probes of the due index for the queues that
/// may have changed, merged with what the store kept (see `store::stats_cache`). Starts a
/// compaction in the background when many deltas waited (no pool's maintenance ran).
pub(super) async fn stats(
    pool: &PgPool,
    namespace: &str,
    cache: &Arc<StatsCache>,
) -> Result<Vec<QueueStats>> {
    let mut cached = cache.lock().await;
    let (event_types, routing_keys, next_scheduled) = cached.scheduled();
    let rows: Vec<CounterRow> = sqlx::query_as(STATS)
        .bind(namespace)
        .bind(cached.seq())
        .bind(event_types)
        .bind(routing_keys)
        .bind(next_scheduled)
        .bind(cached.snapshot().map(str::to_owned))
        .fetch_all(pool)
        .await?;
    let merged = cached.merge(rows);
    let deltas = merged.deltas;
    let stats = cached.finish(merged);
    drop(cached);
    if deltas >= COMPACT_AFTER_STATS && cache.start_compacting() {
        let (pool, done) = (pool.clone(), Compacted(cache.clone()));
        tokio::spawn(async move {
            if let Err(e) = compact_counters(&pool).await {
                tracing::warn!(error = %e, "compacting the queue counters after a stats read");
            }
            drop(done);
        });
    }
    Ok(stats)
}

/// Pause (`paused`) or resume `q`: the two statements take the same parameters.
pub(super) async fn set_paused(
    pool: &PgPool,
    namespace: &str,
    q: &Queue,
    paused: bool,
) -> Result<()> {
    sqlx::query(if paused { PAUSE } else { RESUME })
        .bind(namespace)
        .bind(&q.event_type)
        .bind(q.routing_key_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn dead_letters(
    pool: &PgPool,
    namespace: &str,
    q: Option<&Queue>,
    after: Option<EventId>,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    let rows: Vec<DeadRow<serde_json::Value, DateTime<Utc>>> = sqlx::query_as(DEAD_LETTERS)
        .bind(namespace)
        .bind(q.map(|q| q.event_type.as_str()))
        .bind(q.map(Queue::routing_key_str))
        .bind(after.map_or(0, |id| id.0))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_dead_letter(|payload| payload, |at| at))
        .collect())
}

pub(super) async fn replay(pool: &PgPool, namespace: &str, ids: &[EventId]) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(REPLAY)
        .bind(namespace)
        .bind(raw_ids(ids))
        .fetch_one(pool)
        .await?;
    Ok(n as u64)
}

pub(super) async fn purge_dead(pool: &PgPool, namespace: &str, q: Option<&Queue>) -> Result<u64> {
    let done = sqlx::query(PURGE_DEAD)
        .bind(namespace)
        .bind(q.map(|q| q.event_type.as_str()))
        .bind(q.map(Queue::routing_key_str))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
