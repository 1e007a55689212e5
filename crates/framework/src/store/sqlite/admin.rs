//! Maintenance (reap, prune) and operator controls: pause and resume, stats, dead letters.
//!
//! Mirrors `postgres::admin` op for op; two copies, as the pools and bound types differ (the
//! rows they return are decoded once, in `store::admin` and `store::stats_cache`).

use std::time::Duration;

use sqlx::SqlitePool;

use super::complete::{distinct_queues, pending_only};
use super::{id_array, instant, millis, SqliteTx};
use crate::error::Result;
use crate::event::{EventId, Queue};
use crate::store::admin::DeadRow;
use crate::store::stats_cache::{CounterRow, StatsCache};
use crate::store::{DeadLetter, QueueStats};

const REAP: &str = include_str!("sql/reap.sql");
const PRUNE: &str = include_str!("sql/prune.sql");
const PRUNE_KEYS: &str = include_str!("sql/prune_keys.sql");
/// `sql` (rows of [`CounterRow`]'s columns) as one JSON array of arrays in one row: each
/// row a statement returns is a hand-off from the connection's thread (~10 µs here), so
/// 1,000 queues' rows cost ~10 ms one by one.
macro_rules! as_one_json_row {
    ($sql:expr) => {
        concat!(
            "select json_group_array(json_array(kind, event_type, routing_key, pending, ",
            "waiting, in_flight, retrying, dead, delivered, cancelled, enqueued_total, ",
            "completed_total, failed_total, dead_total, changes, parked_keys, extra, extra2)) ",
            "from (\n",
            $sql,
            "\n)"
        )
    };
}

const STATS: &str = as_one_json_row!(include_str!("sql/stats.sql"));
const STATS_PROBE: &str = as_one_json_row!(include_str!("sql/stats_probe.sql"));
const DEAD_LETTERS: &str = include_str!("sql/dead_letters.sql");
const REPLAY: &str = include_str!("sql/replay.sql");
const PAUSE: &str = "insert into conveyor_paused_handlers \
                     (namespace, event_type, routing_key, paused_at) \
                     values ($1, $2, $3, $4) on conflict do nothing";
const RESUME: &str = "delete from conveyor_paused_handlers \
                      where namespace = $1 and event_type = $2 and routing_key = $3";
const PURGE_DEAD: &str = "delete from conveyor_events where status = 'dead' and namespace = $1 \
                          and ($2 is null or (event_type = $2 and routing_key = $3))";

/// Return expired leases to their queues (those whose cancel was requested become
/// cancelled); returns the queues that got work back.
pub(super) async fn reap(
    tx: &mut SqliteTx,
    namespace: &str,
    limit: usize,
    now: i64,
) -> Result<Vec<Queue>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(REAP)
        .bind(namespace)
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut **tx)
        .await?;
    Ok(distinct_queues(pending_only(rows)))
}

pub(super) async fn prune(
    tx: &mut SqliteTx,
    namespace: &str,
    retention: Duration,
    limit: usize,
    now: i64,
) -> Result<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let events = sqlx::query(PRUNE)
        .bind(namespace)
        .bind(now.saturating_sub(millis(retention)))
        .bind(limit)
        .execute(&mut **tx)
        .await?;
    let keys = sqlx::query(PRUNE_KEYS)
        .bind(namespace)
        .bind(now)
        .bind(limit)
        .execute(&mut **tx)
        .await?;
    Ok(events.rows_affected() + keys.rows_affected())
}

pub(super) async fn pause(tx: &mut SqliteTx, namespace: &str, q: &Queue, now: i64) -> Result<()> {
    sqlx::query(PAUSE)
        .bind(namespace)
        .bind(&q.event_type)
        .bind(q.routing_key_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn resume(tx: &mut SqliteTx, namespace: &str, q: &Queue) -> Result<()> {
    sqlx::query(RESUME)
        .bind(namespace)
        .bind(&q.event_type)
        .bind(q.routing_key_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every queue's stats at `now` (ms): the counters, and probes of the due index for the
/// queues whose kept probe no longer holds, in one read transaction (one snapshot), one read
/// at a time (see `store::stats_cache`).
pub(super) async fn stats(
    pool: &SqlitePool,
    namespace: &str,
    now: i64,
    cache: &StatsCache,
) -> Result<Vec<QueueStats>> {
    let mut cached = cache.lock().await;
    let mut tx = pool.begin().await?;
    let rows: String = sqlx::query_scalar(STATS)
        .bind(namespace)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    let rows: Vec<CounterRow> = serde_json::from_str(&rows)?;
    let mut merged = cached.merge(rows);
    let (event_types, routing_keys) = cached.stale(&merged);
    if !event_types.is_empty() {
        let queues: Vec<(String, String)> = event_types.into_iter().zip(routing_keys).collect();
        let probed: String = sqlx::query_scalar(STATS_PROBE)
            .bind(namespace)
            .bind(now)
            .bind(serde_json::to_string(&queues)?)
            .fetch_one(&mut *tx)
            .await?;
        let probed: Vec<CounterRow> = serde_json::from_str(&probed)?;
        cached.add(&mut merged, probed);
    }
    tx.commit().await?;
    Ok(cached.finish(merged))
}

pub(super) async fn dead_letters(
    pool: &SqlitePool,
    namespace: &str,
    q: Option<&Queue>,
    after: Option<EventId>,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    let rows: Vec<DeadRow<String, i64>> = sqlx::query_as(DEAD_LETTERS)
        .bind(namespace)
        .bind(q.map(|q| q.event_type.as_str()))
        .bind(q.map(Queue::routing_key_str))
        .bind(after.map_or(0, |id| id.0))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_dead_letter(json_or_text, instant))
        .collect())
}

/// A stored payload as JSON, or as a JSON string when it is not JSON.
fn json_or_text(payload: String) -> serde_json::Value {
    serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload))
}

/// Replay dead letters; returns how many, and their queues (to wake after the commit).
pub(super) async fn replay(
    tx: &mut SqliteTx,
    namespace: &str,
    ids: &[EventId],
    now: i64,
) -> Result<(u64, Vec<Queue>)> {
    let rows: Vec<(String, String)> = sqlx::query_as(REPLAY)
        .bind(namespace)
        .bind(id_array(ids))
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
    Ok((rows.len() as u64, distinct_queues(rows)))
}

pub(super) async fn purge_dead(
    tx: &mut SqliteTx,
    namespace: &str,
    q: Option<&Queue>,
) -> Result<u64> {
    let done = sqlx::query(PURGE_DEAD)
        .bind(namespace)
        .bind(q.map(|q| q.event_type.as_str()))
        .bind(q.map(Queue::routing_key_str))
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}
