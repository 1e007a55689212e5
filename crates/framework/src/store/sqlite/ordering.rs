//! Ordering keys and global limits on SQLite: recording a queue's settings, listing and
//! skipping parked keys. A key advances in the triggers of the ordering migration. Mirrors
//! `postgres::ordering`; two copies, as the pools and bound types differ.

use sqlx::SqlitePool;

use super::{instant, SqliteTx};
use crate::error::{Error, Result};
use crate::event::{EventId, Queue};
use crate::store::{ParkedKey, ParkedRow, QueueSettings};

const CONFIGURE: &str = include_str!("sql/configure.sql");
const PARKED_KEYS: &str = include_str!("sql/parked_keys.sql");
const UNPARK: &str = "delete from conveyor_parked_keys where namespace = $1 and event_type = $2 \
                      and routing_key = $3 and ordering_key = $4 returning event_id";
const ADVANCE: &str = "insert into conveyor_key_advance values ($1, $2, $3, $4)";

pub(super) async fn configure(
    tx: &mut SqliteTx,
    namespace: &str,
    queue: &Queue,
    settings: &QueueSettings,
    now: i64,
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
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn parked_keys(
    pool: &SqlitePool,
    namespace: &str,
    queue: Option<&Queue>,
    limit: usize,
) -> Result<Vec<ParkedKey>> {
    let rows: Vec<ParkedRow<i64>> = sqlx::query_as(PARKED_KEYS)
        .bind(namespace)
        .bind(queue.map(|q| q.event_type.as_str()))
        .bind(queue.map(|q| q.routing_key_str().into_owned()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| r.into_parked(instant)).collect())
}

/// Unpark `key` and advance it; the caller wakes the queue after its commit.
pub(super) async fn skip_key(
    tx: &mut SqliteTx,
    namespace: &str,
    queue: &Queue,
    key: &str,
) -> Result<Option<EventId>> {
    let routing_key = queue.routing_key_str();
    let head: Option<i64> = sqlx::query_scalar(UNPARK)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(&*routing_key)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    if head.is_some() {
        sqlx::query(ADVANCE)
            .bind(namespace)
            .bind(&queue.event_type)
            .bind(&*routing_key)
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(head.map(EventId))
}
