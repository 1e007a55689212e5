//! [`PartitionManager`]: day partitions of `events_raw` (and `analytics_rollup_seen`) created
//! ahead, dropped past retention; a non-empty default partition is reported.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;

use crate::PipelineStore;

/// Keeps the day partitions of `events_raw` and `analytics_rollup_seen` in place.
///
/// Each [`maintain`](Self::maintain) pass, for both tables:
/// - creates the partitions `<table>_pYYYYMMDD`, range `[day 00:00 UTC, next day 00:00 UTC)`,
///   of every day from `today - (retention_days - 1)` to `today + ahead_days`;
/// - drops the partitions of days before that window, and deletes the default partition's
///   rows and the search tables' rows (`search_documents`, `search_embeddings`) older than it;
/// - counts the rows left in `events_raw_default` (timestamps no partition covers) and warns
///   when there are any.
///
/// **Rows already in the default partition** for a day being created are moved, not skipped:
/// Postgres refuses to create a partition whose range the default partition holds rows of,
/// so each partition is created as a standalone table, the day's rows are moved into it out
/// of the default partition (`delete … returning`), and it is attached, all in one
/// transaction that holds the default partition against inserts meanwhile. An event that
/// arrived early (a clock running ahead) thus ends up in its day's partition once the day
/// comes into the window, and the default partition only holds what no window covers.
/// Attaching locks the parent in share update exclusive mode, so inserts into other days
/// go on while a partition is created.
///
/// Retention applies to raw rows and `analytics_rollup_seen`, not to the daily rollups,
/// which stay. An event older than the window that is reprocessed after its day was dropped
/// is therefore counted again: keep `retention_days` longer than any replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionManager {
    /// Days after today to create partitions for. Defaults to 7.
    pub ahead_days: u32,
    /// Days of raw events kept, today included (at least 1); older partitions are dropped.
    /// Defaults to 30.
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

impl PartitionReport {
    /// Log what the pass changed: info when it created or dropped partitions, debug
    /// otherwise. ([`PartitionManager::maintain`] itself warns about default-partition rows.)
    pub fn log(&self) {
        if self.created.is_empty() && self.dropped.is_empty() {
            tracing::debug!(default_rows = self.default_rows, "partitions maintained");
        } else {
            tracing::info!(
                created = self.created.len(),
                dropped = self.dropped.len(),
                default_rows = self.default_rows,
                "partitions maintained"
            );
        }
    }
}

impl PartitionManager {
    /// Run one upkeep pass ([`PipelineStore::maintain`]: this manager's partitions on
    /// Postgres, retention on SQLite) for the current UTC day now and then every `interval`
    /// until `shutdown` is cancelled. A failed pass is logged and retried at the next tick;
    /// a pass in flight at shutdown is abandoned (its open transaction rolls back). An
    /// `interval` under 1 ms is taken as 1 ms.
    pub async fn run<S: PipelineStore>(
        self,
        store: S,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let today = Utc::now().date_naive();
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = store.maintain(&self, today) => match result {
                    Ok(report) => report.log(),
                    Err(e) => tracing::error!(
                        error.message = %e,
                        error.cause_chain = ?e,
                        "partition maintenance failed"
                    ),
                },
            }
        }
    }

    /// The first and last day partitions are kept for.
    pub(crate) fn window(&self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let kept_before = u64::from(self.retention_days.max(1) - 1);
        let first = today
            .checked_sub_days(Days::new(kept_before))
            .unwrap_or(today);
        let last = today
            .checked_add_days(Days::new(u64::from(self.ahead_days)))
            .unwrap_or(today);
        (first, last)
    }
}

/// Midnight UTC of `day`.
pub(crate) fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The day `s` (`YYYY-MM-DD`).
    pub(crate) fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn window_keeps_retention_days_including_today() {
        let m = PartitionManager {
            ahead_days: 7,
            retention_days: 30,
        };
        assert_eq!(
            m.window(date("2026-11-25")),
            (date("2026-10-27"), date("2026-12-02"))
        );
    }

    #[test]
    fn zero_retention_keeps_today() {
        let m = PartitionManager {
            ahead_days: 0,
            retention_days: 0,
        };
        let today = date("2026-11-25");
        assert_eq!(m.window(today), (today, today));
    }
}
