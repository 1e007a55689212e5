//! Activity: the pools' heartbeats (their rows and per-queue minutes) and the reads behind
//! `Store::activity` and `Store::workers`, as `postgres::activity` does (instants in
//! milliseconds, histograms as JSON arrays).

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use super::{instant, SqliteTx};
use crate::error::Result;
use crate::event::Queue;
use crate::store::activity_sql::{
    PRUNE_MINUTES, PRUNE_WORKERS, REMOVE_WORKER, UPSERT_MINUTE, UPSERT_WORKER, WORKERS,
};
use crate::store::{
    counts, prune_before, queues_json, stored, ActivityMinute, ActivityRow, WorkerInfo, WorkerRow,
};

const ROWS: &str = "select event_type, routing_key, minute, wait, run, completed, failed \
     from conveyor_queue_activity \
     where namespace = $1 and minute >= $2 \
       and ($3 is null or (event_type = $3 and routing_key = $4))";

/// A histogram as stored: a JSON array of counts.
fn json(counts: &[u64]) -> String {
    serde_json::to_string(&stored(counts)).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) async fn record(
    tx: &mut SqliteTx,
    namespace: &str,
    worker: &WorkerInfo,
    minutes: &[ActivityMinute],
) -> Result<()> {
    sqlx::query(UPSERT_WORKER)
        .bind(namespace)
        .bind(&worker.pool_id)
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(queues_json(worker))
        .bind(worker.started_at.timestamp_millis())
        .bind(worker.last_seen.timestamp_millis())
        .bind(i64::try_from(worker.heartbeat_ms).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    for m in minutes {
        sqlx::query(UPSERT_MINUTE)
            .bind(namespace)
            .bind(&m.queue.event_type)
            .bind(m.queue.routing_key_str())
            .bind(&worker.pool_id)
            .bind(m.minute.timestamp_millis())
            .bind(json(&m.wait))
            .bind(json(&m.run))
            .bind(i64::try_from(m.completed).unwrap_or(i64::MAX))
            .bind(i64::try_from(m.failed).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?;
    }
    let before = prune_before(worker.last_seen).timestamp_millis();
    for prune in [PRUNE_MINUTES, PRUNE_WORKERS] {
        sqlx::query(prune)
            .bind(namespace)
            .bind(before)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub(super) async fn remove(tx: &mut SqliteTx, namespace: &str, pool_id: &str) -> Result<()> {
    sqlx::query(REMOVE_WORKER)
        .bind(namespace)
        .bind(pool_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn workers(pool: &SqlitePool, namespace: &str) -> Result<Vec<WorkerInfo>> {
    let rows: Vec<WorkerRow<i64>> = sqlx::query_as(WORKERS)
        .bind(namespace)
        .fetch_all(pool)
        .await?;
    let now = Utc::now();
    Ok(rows.into_iter().map(|r| r.decode(now, instant)).collect())
}

pub(super) async fn rows(
    pool: &SqlitePool,
    namespace: &str,
    since: DateTime<Utc>,
    queue: Option<&Queue>,
) -> Result<Vec<ActivityMinute>> {
    let rows: Vec<ActivityRow<i64, String>> = sqlx::query_as(ROWS)
        .bind(namespace)
        .bind(since.timestamp_millis())
        .bind(queue.map(|q| &q.event_type))
        .bind(queue.map(|q| q.routing_key_str()))
        .fetch_all(pool)
        .await?;
    let hist = |text: String| counts(&serde_json::from_str::<Vec<i64>>(&text).unwrap_or_default());
    Ok(rows.into_iter().map(|r| r.decode(instant, hist)).collect())
}
