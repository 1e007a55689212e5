//! Maintenance: reaping expired leases and pruning delivered rows.

use std::time::Duration;

use sqlx::PgPool;

use super::{millis, queue};
use crate::error::Result;
use crate::event::Queue;

const REAP: &str = include_str!("sql/reap.sql");
const PRUNE: &str = include_str!("sql/prune.sql");

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
    let done = sqlx::query(PRUNE)
        .bind(namespace)
        .bind(millis(retention))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
