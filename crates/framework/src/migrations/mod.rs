//! Conveyor's own migration history: the table `conveyor_migrations`, kept apart from the
//! `_sqlx_migrations` table your application's `sqlx::migrate!()` uses, so the two migrators
//! never see (and refuse) each other's versions.
//!
//! [`PgStore::migrate`](crate::PgStore::migrate) and
//! [`SqliteStore::open`](crate::SqliteStore::open) use it for Conveyor's outbox; crates that
//! add tables beside Conveyor's (the `conveyor` server's pipeline) call [`run_postgres`] or
//! [`run_sqlite`] with their own [`Migrator`]. Several sets share the table, so versions of
//! another set are not an error.
//!
//! **Upgrading from a version that used `_sqlx_migrations`:** on its first run the history
//! adopts Conveyor's rows from `_sqlx_migrations` (the same version with the same checksum)
//! and removes them there, so your application's migrator stops refusing them. Nothing is
//! re-applied. Rows of your own migrations are never touched.
//!
//! Each migration runs in its own transaction together with the row recording it; on
//! Postgres one process migrates at a time (an advisory lock), on SQLite each step takes the
//! write lock (`BEGIN IMMEDIATE`) and re-reads the history inside it.

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::run_postgres;
#[cfg(feature = "sqlite")]
pub use sqlite::run_sqlite;

use sqlx::migrate::{MigrateError, Migration, Migrator};

/// The table Conveyor records its applied migrations in.
pub const TABLE: &str = "conveyor_migrations";

/// One row of a history table.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Applied {
    version: i64,
    checksum: Vec<u8>,
    success: bool,
}

/// The migrations of `migrator` that `applied` does not hold yet, in version order; an
/// error when one of its versions is recorded as failed or with another checksum.
fn pending<'m>(
    migrator: &'m Migrator,
    applied: &[Applied],
) -> Result<Vec<&'m Migration>, MigrateError> {
    let mut pending = Vec::new();
    for migration in ups(migrator) {
        match applied.iter().find(|a| a.version == migration.version) {
            None => pending.push(migration),
            Some(a) if !a.success => return Err(MigrateError::Dirty(a.version)),
            Some(a) if a.checksum != *migration.checksum => {
                return Err(MigrateError::VersionMismatch(a.version))
            }
            Some(_) => {}
        }
    }
    Ok(pending)
}

/// The versions of `legacy` (rows of `_sqlx_migrations`) that are `migrator`'s own: the
/// same version, applied successfully, with the same checksum.
fn adoptable(migrator: &Migrator, legacy: &[Applied]) -> Vec<i64> {
    ups(migrator)
        .filter(|m| {
            legacy
                .iter()
                .any(|a| a.version == m.version && a.success && a.checksum == *m.checksum)
        })
        .map(|m| m.version)
        .collect()
}

/// The forward migrations of `migrator`, in version order.
fn ups(migrator: &Migrator) -> impl Iterator<Item = &Migration> {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
}

/// The versions of `migrator`, to look rows up by.
#[cfg(feature = "postgres")]
fn versions(migrator: &Migrator) -> Vec<i64> {
    ups(migrator).map(|m| m.version).collect()
}

/// The history row of `migration`, applied successfully in `elapsed` (nanoseconds, like
/// sqlx's own table).
fn record(migration: &Migration, elapsed: std::time::Duration) -> crate::sql::Sql<'_> {
    crate::sql::sql(
        "insert into conveyor_migrations (version, description, success, checksum, execution_time)
         values ($1, $2, true, $3, $4)",
    )
    .bind(migration.version)
    .bind(migration.description.as_ref())
    .bind(migration.checksum.as_ref())
    .bind(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    static SET: Migrator = sqlx::migrate!("../../migrations/postgres");

    fn row(m: &Migration, success: bool, checksum: &[u8]) -> Applied {
        Applied {
            version: m.version,
            checksum: checksum.to_vec(),
            success,
        }
    }

    #[test]
    fn pending_skips_applied_and_refuses_failed_or_changed_versions() {
        let first = SET.iter().next().expect("a migration");
        assert_eq!(pending(&SET, &[]).unwrap().len(), SET.iter().count());
        let done = row(first, true, &first.checksum);
        assert!(pending(&SET, &[done])
            .unwrap()
            .iter()
            .all(|m| m.version != first.version));
        let failed = row(first, false, &first.checksum);
        assert!(
            matches!(pending(&SET, &[failed]), Err(MigrateError::Dirty(v)) if v == first.version)
        );
        let changed = row(first, true, b"other");
        assert!(matches!(
            pending(&SET, &[changed]),
            Err(MigrateError::VersionMismatch(v)) if v == first.version
        ));
    }

    #[test]
    fn only_own_successful_rows_with_the_same_checksum_are_adopted() {
        let first = SET.iter().next().expect("a migration");
        let other_app = Applied {
            version: 1,
            checksum: b"app".to_vec(),
            success: true,
        };
        let same_version_other_sql = row(first, true, b"app's own");
        assert!(adoptable(&SET, &[other_app.clone(), same_version_other_sql]).is_empty());
        assert!(adoptable(&SET, &[row(first, false, &first.checksum)]).is_empty());
        assert_eq!(
            adoptable(&SET, &[other_app, row(first, true, &first.checksum)]),
            vec![first.version]
        );
    }
}
