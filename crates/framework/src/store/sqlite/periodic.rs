//! Periodic events: publishing a tick once across processes, reading the last one.
//!
//! Mirrors `postgres::periodic`; two copies, as the transactions and bound types differ.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use super::{insert, instant, SqliteTx};
use crate::error::Result;
use crate::event::{NewEvent, Published};

const TICK: &str = include_str!("sql/tick.sql");
const LAST_TICK: &str = include_str!("sql/last_tick.sql");

/// Record `tick` and insert `event` at `now` (ms) in `tx`, if `tick` is later than the
/// recorded one; commits only then.
pub(super) async fn publish_tick(
    mut tx: SqliteTx,
    namespace: &str,
    window: Duration,
    name: &str,
    tick: DateTime<Utc>,
    event: NewEvent,
    now: i64,
) -> Result<Option<Published>> {
    let recorded: Option<i64> = sqlx::query_scalar(TICK)
        .bind(namespace)
        .bind(name)
        .bind(tick.timestamp_millis())
        .fetch_optional(&mut *tx.tx)
        .await?;
    if recorded.is_none() {
        // dropping `tx` rolls back: nothing was written
        return Ok(None);
    }
    let (report, woken) = insert::insert(&mut tx.tx, namespace, window, &[event], now).await?;
    tx.wakes.extend(woken);
    tx.commit().await?;
    Ok(report.results.first().copied())
}

pub(super) async fn last_tick(
    pool: &SqlitePool,
    namespace: &str,
    name: &str,
) -> Result<Option<DateTime<Utc>>> {
    let ms: Option<i64> = sqlx::query_scalar(LAST_TICK)
        .bind(namespace)
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(ms.map(instant))
}
