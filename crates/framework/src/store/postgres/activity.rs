//! Activity: the pools' heartbeats (their rows and per-queue minutes) and the reads behind
//! `Store::activity` and `Store::workers` (merged in `store::activity`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::Result;
use crate::event::Queue;
use crate::store::activity_sql::{
    PRUNE_MINUTES, PRUNE_WORKERS, REMOVE_WORKER, UPSERT_MINUTE, UPSERT_WORKER, WORKERS,
};
use crate::store::{
    prune_before, queues_json, stored, ActivityMinute, ActivityRow, WorkerInfo, WorkerRow,
};

const ROWS: &str = "select event_type, routing_key, minute, wait, run, completed, failed \
     from conveyor_queue_activity \
     where namespace = $1 and minute >= $2 \
       and ($3::text is null or (event_type = $3 and routing_key = $4))";

pub(super) async fn record(
    pool: &PgPool,
    namespace: &str,
    worker: &WorkerInfo,
    minutes: &[ActivityMinute],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(UPSERT_WORKER)
        .bind(namespace)
        .bind(&worker.pool_id)
        .bind(&worker.host)
        .bind(i64::from(worker.pid))
        .bind(queues_json(worker))
        .bind(worker.started_at)
        .bind(worker.last_seen)
        .bind(i64::try_from(worker.heartbeat_ms).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    for m in minutes {
        sqlx::query(UPSERT_MINUTE)
            .bind(namespace)
            .bind(&m.queue.event_type)
            .bind(m.queue.routing_key_str())
            .bind(&worker.pool_id)
            .bind(m.minute)
            .bind(stored(&m.wait))
            .bind(stored(&m.run))
            .bind(i64::try_from(m.completed).unwrap_or(i64::MAX))
            .bind(i64::try_from(m.failed).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
    }
    let before = prune_before(worker.last_seen);
    for prune in [PRUNE_MINUTES, PRUNE_WORKERS] {
        sqlx::query(prune)
            .bind(namespace)
            .bind(before)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn remove(pool: &PgPool, namespace: &str, pool_id: &str) -> Result<()> {
    sqlx::query(REMOVE_WORKER)
        .bind(namespace)
        .bind(pool_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn workers(pool: &PgPool, namespace: &str) -> Result<Vec<WorkerInfo>> {
    let rows: Vec<WorkerRow<DateTime<Utc>>> = sqlx::query_as(WORKERS)
        .bind(namespace)
        .fetch_all(pool)
        .await?;
    let now = Utc::now();
    Ok(rows.into_iter().map(|r| r.decode(now, |at| at)).collect())
}

pub(super) async fn rows(
    pool: &PgPool,
    namespace: &str,
    since: DateTime<Utc>,
    queue: Option<&Queue>,
) -> Result<Vec<ActivityMinute>> {
    let rows: Vec<ActivityRow<DateTime<Utc>, Vec<i64>>> = sqlx::query_as(ROWS)
        .bind(namespace)
        .bind(since)
        .bind(queue.map(|q| &q.event_type))
        .bind(queue.map(|q| q.routing_key_str()))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.decode(|at| at, |h| crate::store::counts(&h)))
        .collect())
}
