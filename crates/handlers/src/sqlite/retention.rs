//! `maintain` on SQLite: retention by deleting rows, as there are no partitions.

use chrono::NaiveDate;
use conveyor::{SqliteStore, Store};

use super::{micros, store_error};
use crate::partitions::midnight;
use crate::{PartitionManager, PartitionReport, Result};

const EXPIRE: &str = include_str!("sql/retention_expire.sql");

/// The tables retention applies to, as on Postgres: raw events and the rollup's seen keys
/// (the daily rollups stay), and the search tables (the FTS5 index follows
/// `search_documents` by trigger).
const EXPIRING: [&str; 4] = [
    "events_raw",
    "analytics_rollup_seen",
    "search_documents",
    "search_embeddings",
];

/// Rows deleted per write transaction, so writers (the handlers) wait at most one chunk.
const CHUNK: i64 = 5_000;

/// One upkeep pass for `today`: delete every row of the [`EXPIRING`] tables older than the
/// first day `partitions` keeps (`today - (retention_days - 1)`, UTC midnight), the window
/// the Postgres pass keeps partitions for. Rows ahead of today are kept, like Postgres' default
/// partition keeps them, so the report's `created`, `dropped` and `default_rows` stay empty
/// and 0.
///
/// Each table is expired in chunks of [`CHUNK`] rows, one write transaction each; an error
/// leaves the chunks before it deleted, and the next pass goes on.
///
/// # Errors
/// Database errors.
pub(super) async fn maintain(
    store: &SqliteStore,
    partitions: &PartitionManager,
    today: NaiveDate,
) -> Result<PartitionReport> {
    let (first, _) = partitions.window(today);
    let cutoff = micros(midnight(first));
    for table in EXPIRING {
        let statement = EXPIRE.replace("{table}", table);
        let mut expired = 0;
        loop {
            let mut tx = store.begin().await.map_err(store_error)?;
            let deleted = sqlx::query(&statement)
                .bind(cutoff)
                .bind(CHUNK)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await.map_err(store_error)?;
            expired += deleted;
            if deleted < CHUNK.unsigned_abs() {
                break;
            }
        }
        if expired > 0 {
            tracing::info!(table, expired, "expired rows past retention");
        }
    }
    Ok(PartitionReport::default())
}
