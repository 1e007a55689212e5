//! Periodic events: publishing a tick once across processes, reading the last one.
//!
//! Mirrors `sqlite::periodic`; two copies, as the transactions and bound types differ.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::insert;
use crate::error::Result;
use crate::event::{NewEvent, Published};

const TICK: &str = include_str!("sql/tick.sql");
const LAST_TICK: &str = include_str!("sql/last_tick.sql");

/// Record `tick` and insert `event` in one transaction, if `tick` is later than the recorded one.
pub(super) async fn publish_tick(
    pool: &PgPool,
    namespace: &str,
    window: Duration,
    name: &str,
    tick: DateTime<Utc>,
    event: NewEvent,
) -> Result<Option<Published>> {
    let mut tx = pool.begin().await?;
    let recorded: Option<DateTime<Utc>> = sqlx::query_scalar(TICK)
        .bind(namespace)
        .bind(name)
        .bind(tick)
        .fetch_optional(&mut *tx)
        .await?;
    if recorded.is_none() {
        // dropping `tx` rolls back: nothing was written
        return Ok(None);
    }
    let report = insert::insert(&mut *tx, namespace, window, &[event]).await?;
    tx.commit().await?;
    Ok(report.results.first().copied())
}

pub(super) async fn last_tick(
    pool: &PgPool,
    namespace: &str,
    name: &str,
) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(LAST_TICK)
        .bind(namespace)
        .bind(name)
        .fetch_optional(pool)
        .await?)
}
