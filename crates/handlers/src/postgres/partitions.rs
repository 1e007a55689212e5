//! [`PartitionManager::maintain`] on Postgres: the day partitions of `events_raw` and
//! `analytics_rollup_seen`, created ahead and dropped past retention.

use std::collections::HashSet;

use chrono::NaiveDate;
use sqlx::PgPool;

use crate::partitions::midnight;
use crate::{PartitionManager, PartitionReport};

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

fn next_day(day: NaiveDate) -> NaiveDate {
    day.succ_opt().unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitions::tests::date;

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
