//! Operator controls: pause and resume, stats, dead letters.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{queue, raw_ids};
use crate::error::Result;
use crate::event::{EventId, Queue};
use crate::store::admin::StatsRow;
use crate::store::{DeadLetter, QueueStats};

const PAUSE: &str = include_str!("sql/pause.sql");
const RESUME: &str = include_str!("sql/resume.sql");
const STATS: &str = include_str!("sql/stats.sql");
const DEAD_LETTERS: &str = include_str!("sql/dead_letters.sql");
const REPLAY: &str = include_str!("sql/replay.sql");
const PURGE_DEAD: &str = include_str!("sql/purge_dead.sql");

pub(super) async fn pause(pool: &PgPool, namespace: &str, q: &Queue) -> Result<()> {
    sqlx::query(PAUSE)
        .bind(namespace)
        .bind(&q.event_type)
        .bind(q.routing_key_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn resume(pool: &PgPool, namespace: &str, q: &Queue) -> Result<()> {
    sqlx::query(RESUME)
        .bind(namespace)
        .bind(&q.event_type)
        .bind(q.routing_key_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn stats(pool: &PgPool, namespace: &str) -> Result<Vec<QueueStats>> {
    let rows: Vec<StatsRow> = sqlx::query_as(STATS)
        .bind(namespace)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(QueueStats::from).collect())
}

/// A row of `dead_letters.sql`; one per backend, as the types differ (see `store::admin`).
#[derive(sqlx::FromRow)]
struct DeadRow {
    id: i64,
    event_type: String,
    routing_key: String,
    payload: serde_json::Value,
    attempts: i32,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    died_at: DateTime<Utc>,
}

pub(super) async fn dead_letters(
    pool: &PgPool,
    namespace: &str,
    q: Option<&Queue>,
    after: Option<EventId>,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    let rows: Vec<DeadRow> = sqlx::query_as(DEAD_LETTERS)
        .bind(namespace)
        .bind(q.map(|q| q.event_type.as_str()))
        .bind(q.map(Queue::routing_key_str))
        .bind(after.map_or(0, |id| id.0))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeadLetter {
            id: EventId(r.id),
            queue: queue(r.event_type, r.routing_key),
            payload: r.payload,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            last_error: r.last_error,
            created_at: r.created_at,
            died_at: r.died_at,
        })
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
