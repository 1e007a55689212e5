//! [`PartitionManager`]: day partitions of `events_raw` (and `analytics_rollup_seen`) created
//! ahead, dropped past retention; a non-empty default partition is reported.

use chrono::NaiveDate;

/// Keeps day partitions in place. (stub: to be written)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionManager {
    /// Days after today to create partitions for. Defaults to 7.
    pub ahead_days: u32,
    /// Days of raw events kept; older partitions are dropped. Defaults to 30.
    pub retention_days: u32,
}

impl Default for PartitionManager {
    fn default() -> Self {
        Self {
            ahead_days: 7,
            retention_days: 30,
        }
    }
}

/// What one [`PartitionManager::maintain`] pass did and saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionReport {
    /// Partitions created, by table name.
    pub created: Vec<String>,
    /// Partitions dropped, by table name.
    pub dropped: Vec<String>,
    /// Rows in `events_raw_default`: events whose day has no partition. Non-zero is logged
    /// as a warning and shown by `/healthz/detailed`.
    pub default_rows: i64,
}

impl PartitionManager {
    /// Create the partitions of days `today - (retention_days - 1) ..= today + ahead_days`,
    /// drop those wholly before that window, and count the default partition's rows. (stub)
    ///
    /// # Errors
    /// Database errors.
    pub async fn maintain(&self, _pool: &sqlx::PgPool, _today: NaiveDate) -> crate::Result<PartitionReport> {
        todo!()
    }

    /// Rows in the default partition of `events_raw`. (stub)
    ///
    /// # Errors
    /// Database errors.
    pub async fn default_rows(_pool: &sqlx::PgPool) -> crate::Result<i64> {
        todo!()
    }
}
