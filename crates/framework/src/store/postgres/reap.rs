//! Maintenance: reaping expired leases and pruning delivered rows.

use std::time::Duration;

use sqlx::PgPool;

use super::{millis, queue};
use crate::error::Result;
use crate::event::Queue;

const REAP: &str = include_str!("sql/reap.sql");
const PRUNE: &str = include_str!("sql/prune.sql");
const PRUNE_KEYS: &str = include_str!("sql/prune_keys.sql");
const NEEDS_VACUUM: &str = include_str!("sql/needs_vacuum.sql");

pub(super) async fn reap(pool: &PgPool, namespace: &str, limit: usize) -> Result<Vec<Queue>> {
    let rows: Vec<(String, String)> = sqlx::query_as(REAP)
        .bind(namespace)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(t, k)| queue(t, k)).collect())
}

pub(super) async fn prune(
    pool: &PgPool,
    namespace: &str,
    retention: Duration,
    limit: usize,
) -> Result<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let events = sqlx::query(PRUNE)
        .bind(namespace)
        .bind(millis(retention))
        .bind(limit)
        .execute(pool)
        .await?;
    let keys = sqlx::query(PRUNE_KEYS)
        .bind(namespace)
        .bind(limit)
        .execute(pool)
        .await?;
    Ok(events.rows_affected() + keys.rows_affected())
}

/// Vacuum `conveyor_events` when autovacuum will not: it is off on the server or for the
/// table, and dead rows (completions, deletes, prunes) pass 10,000 and 10 % of the live
/// ones. Without this a server run with `autovacuum = off` bloats the claim's indexes
/// until draining slows down. `skip_locked` leaves the table to a vacuum already running.
pub(super) async fn vacuum(pool: &PgPool) -> Result<bool> {
    let needed: bool = sqlx::query_scalar(NEEDS_VACUUM).fetch_one(pool).await?;
    if needed {
        sqlx::query("vacuum (skip_locked) conveyor_events")
            .execute(pool)
            .await?;
    }
    Ok(needed)
}
