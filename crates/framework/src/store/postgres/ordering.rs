//! Ordering keys and global limits: recording a queue's settings, listing and skipping
//! parked keys. The rest lives in the database (triggers and functions of the ordering
//! migration), so every path that finishes an event advances its key.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::{Error, Result};
use crate::event::{EventId, Queue};
use crate::store::{ParkedKey, ParkedRow, QueueSettings};

const CONFIGURE: &str = include_str!("sql/configure.sql");
const PARKED_KEYS: &str = include_str!("sql/parked_keys.sql");
const SKIP_KEY: &str = "select conveyor_skip_key($1, $2, $3, $4)";

pub(super) async fn configure(
    pool: &PgPool,
    namespace: &str,
    queue: &Queue,
    settings: &QueueSettings,
) -> Result<()> {
    settings.check().map_err(Error::Config)?;
    let (key_concurrency, park, max_in_flight) = settings.columns();
    sqlx::query(CONFIGURE)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(&*queue.routing_key_str())
        .bind(key_concurrency)
        .bind(park)
        .bind(max_in_flight)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn parked_keys(
    pool: &PgPool,
    namespace: &str,
    queue: Option<&Queue>,
    limit: usize,
) -> Result<Vec<ParkedKey>> {
    let rows: Vec<ParkedRow<DateTime<Utc>>> = sqlx::query_as(PARKED_KEYS)
        .bind(namespace)
        .bind(queue.map(|q| q.event_type.as_str()))
        .bind(queue.map(|q| q.routing_key_str().into_owned()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| r.into_parked(|t| t)).collect())
}

pub(super) async fn skip_key(
    pool: &PgPool,
    namespace: &str,
    queue: &Queue,
    key: &str,
) -> Result<Option<EventId>> {
    let head: Option<i64> = sqlx::query_scalar(SKIP_KEY)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(&*queue.routing_key_str())
        .bind(key)
        .fetch_one(pool)
        .await?;
    Ok(head.map(EventId))
}
