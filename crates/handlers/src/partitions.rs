//! [`PartitionManager`]: day partitions of `events_raw` (and `analytics_rollup_seen`) created
//! ahead, dropped past retention; a non-empty default partition is reported.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::PipelineStore;

const LIST: &str = include_str!("sql/partition_list.sql");
const LOCK_TIMEOUT: &str = include_str!("sql/partition_lock_timeout.sql");
const LOCK_DEFAULT: &str = include_str!("sql/partition_lock_default.sql");
const IS_ATTACHED: &str = include_str!("sql/partition_is_attached.sql");
const CREATE_STANDALONE: &str = include_str!("sql/partition_create_standalone.sql");
const MOVE_DEFAULT_ROWS: &str = include_str!("sql/partition_move_default_rows.sql");
const ATTACH: &str = include_str!("sql/partition_attach.sql");
const DROP: &str = include_str!("sql/partition_drop.sql");
const EXPIRE_DEFAULT: &str = include_str!("sql/partition_expire_default.sql");
const EXPIRE_SEARCH_DOCUMENTS: &str = include_str!("sql/partition_expire_search_documents.sql");
const EXPIRE_SEARCH_EMBEDDINGS: &str = include_str!("sql/partition_expire_search_embeddings.sql");
const DEFAULT_ROWS: &str = include_str!("sql/partition_default_rows.sql");

/// The day-partitioned tables, both with a `<table>_default` partition.
const PARTITIONED: [&str; 2] = ["events_raw", "analytics_rollup_seen"];

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
    /// Create the partitions of days `today - (retention_days - 1) ..= today + ahead_days`,
    /// drop those wholly before that window, and count the default partition's rows.
    ///
    /// Idempotent, and safe to run from several processes at once: existing partitions are
    /// skipped (re-checked under a lock), and each partition is created in its own
    /// transaction.
    ///
    /// # Errors
    /// Database errors, including a lock not obtained within 5 s (the next pass retries);
    /// partitions created before the error stay.
    pub async fn maintain(
        &self,
        pool: &PgPool,
        today: NaiveDate,
    ) -> crate::Result<PartitionReport> {
        let (first, last) = self.window(today);
        let mut report = PartitionReport::default();
        for parent in PARTITIONED {
            let existing = partitions_of(pool, parent).await?;
            let have: HashSet<NaiveDate> = existing.iter().map(|(_, day)| *day).collect();
            for day in first.iter_days().take_while(|d| *d <= last) {
                if !have.contains(&day) && create_partition(pool, parent, day).await? {
                    report.created.push(partition_name(parent, day));
                }
            }
            for (name, day) in existing.into_iter().filter(|(_, day)| *day < first) {
                drop_partition(pool, parent, day).await?;
                report.dropped.push(name);
            }
            let expired = sqlx::query(&ddl(EXPIRE_DEFAULT, parent, first))
                .bind(midnight(first))
                .execute(pool)
                .await?
                .rows_affected();
            if expired > 0 {
                tracing::info!(
                    table = parent,
                    expired,
                    "expired default-partition rows past retention"
                );
            }
        }
        for statement in [EXPIRE_SEARCH_DOCUMENTS, EXPIRE_SEARCH_EMBEDDINGS] {
            sqlx::query(statement)
                .bind(midnight(first))
                .execute(pool)
                .await?;
        }
        report.default_rows = Self::default_rows(pool).await?;
        if report.default_rows > 0 {
            tracing::warn!(
                default_rows = report.default_rows,
                "events_raw_default holds events outside every day partition"
            );
        }
        Ok(report)
    }

    /// Rows in the default partition of `events_raw`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn default_rows(pool: &PgPool) -> crate::Result<i64> {
        Ok(sqlx::query_scalar(DEFAULT_ROWS).fetch_one(pool).await?)
    }

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

/// The day partitions of `parent` with their days; partitions named otherwise are left out.
async fn partitions_of(pool: &PgPool, parent: &str) -> crate::Result<Vec<(String, NaiveDate)>> {
    let names: Vec<String> = sqlx::query_scalar(LIST)
        .bind(parent)
        .fetch_all(pool)
        .await?;
    Ok(names
        .into_iter()
        .filter_map(|name| partition_day(parent, &name).map(|day| (name, day)))
        .collect())
}

/// Create and attach `day`'s partition of `parent`, moving the default partition's rows of
/// that day into it, in one transaction. `false` when another pass created it first.
async fn create_partition(pool: &PgPool, parent: &str, day: NaiveDate) -> crate::Result<bool> {
    let name = partition_name(parent, day);
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
    sqlx::query(&ddl(LOCK_DEFAULT, parent, day))
        .execute(&mut *tx)
        .await?;
    let attached: bool = sqlx::query_scalar(IS_ATTACHED)
        .bind(&name)
        .fetch_one(&mut *tx)
        .await?;
    if attached {
        return Ok(false);
    }
    sqlx::query(&ddl(CREATE_STANDALONE, parent, day))
        .execute(&mut *tx)
        .await?;
    let moved = sqlx::query(&ddl(MOVE_DEFAULT_ROWS, parent, day))
        .bind(midnight(day))
        .bind(midnight(next_day(day)))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query(&ddl(ATTACH, parent, day))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if moved > 0 {
        tracing::info!(partition = %name, moved, "moved default-partition rows into a new day partition");
    }
    Ok(true)
}

async fn drop_partition(pool: &PgPool, parent: &str, day: NaiveDate) -> crate::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
    sqlx::query(&ddl(DROP, parent, day))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Fill a partition DDL template. Postgres takes no bind parameters in DDL, so names and
/// bounds are spliced in; they are built only from the constant table names in
/// [`PARTITIONED`] and formatted dates, never from input.
fn ddl(template: &str, parent: &str, day: NaiveDate) -> String {
    template
        .replace("{parent}", parent)
        .replace("{default}", &format!("{parent}_default"))
        .replace("{partition}", &partition_name(parent, day))
        .replace("{from}", &bound(day))
        .replace("{to}", &bound(next_day(day)))
}

/// `<parent>_pYYYYMMDD`.
fn partition_name(parent: &str, day: NaiveDate) -> String {
    format!("{parent}_p{}", day.format("%Y%m%d"))
}

/// The day of a partition named by [`partition_name`], or `None` for any other name.
fn partition_day(parent: &str, name: &str) -> Option<NaiveDate> {
    let digits = name.strip_prefix(parent)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

/// A range bound: midnight UTC of `day`, as a `timestamptz` literal.
fn bound(day: NaiveDate) -> String {
    format!("{} 00:00:00+00", day.format("%Y-%m-%d"))
}

/// Midnight UTC of `day`.
pub(crate) fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

fn next_day(day: NaiveDate) -> NaiveDate {
    day.succ_opt().unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
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

    #[test]
    fn partition_names_round_trip_and_others_are_ignored() {
        let day = date("2026-01-05");
        let name = partition_name("events_raw", day);
        assert_eq!(name, "events_raw_p20260105");
        assert_eq!(partition_day("events_raw", &name), Some(day));
        for other in [
            "events_raw_default",
            "events_raw_p2026010",
            "events_raw_p20261345",
            "analytics_rollup_seen_p20260105",
        ] {
            assert_eq!(partition_day("events_raw", other), None, "{other}");
        }
    }

    #[test]
    fn ddl_bounds_are_utc_midnights() {
        let sql = ddl(ATTACH, "events_raw", date("2026-12-31"));
        assert!(
            sql.contains("attach partition events_raw_p20261231"),
            "{sql}"
        );
        assert!(
            sql.contains("from ('2026-12-31 00:00:00+00') to ('2027-01-01 00:00:00+00')"),
            "{sql}"
        );
    }
}
