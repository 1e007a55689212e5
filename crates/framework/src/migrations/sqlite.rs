//! The history on SQLite: each step takes the write lock (`BEGIN IMMEDIATE`) and re-reads
//! the history inside it, so two processes opening one file apply each migration once.

use std::time::Instant;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection as _, Executor as _, SqlitePool};

use super::{adoptable, pending, record, Applied};
use crate::Result;

const CREATE: &str = "create table if not exists conveyor_migrations (
    version bigint primary key,
    description text not null,
    installed_on timestamp not null default current_timestamp,
    success boolean not null,
    checksum blob not null,
    execution_time bigint not null
)";

/// Apply `migrator`'s migrations that `conveyor_migrations` does not hold yet, adopting them
/// from `_sqlx_migrations` first where an earlier version of Conveyor recorded them there.
///
/// # Errors
/// As [`run_postgres`](super::run_postgres).
pub async fn run_sqlite(pool: &SqlitePool, migrator: &Migrator) -> Result<()> {
    let mut conn = pool.acquire().await?;
    loop {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        tx.execute(CREATE).await?;
        adopt(&mut tx, migrator).await?;
        let applied: Vec<Applied> =
            sqlx::query_as("select version, checksum, success from conveyor_migrations")
                .fetch_all(&mut *tx)
                .await?;
        let Some(migration) = pending(migrator, &applied)?.into_iter().next() else {
            tx.commit().await?;
            return Ok(());
        };
        let start = Instant::now();
        tx.execute(&*migration.sql)
            .await
            .map_err(|e| MigrateError::ExecuteMigration(e, migration.version))?;
        crate::sql::execute_sqlite(&mut tx, record(migration, start.elapsed())).await?;
        tx.commit().await?;
        tracing::info!(version = migration.version, description = %migration.description, "applied a migration");
    }
}

/// Move this set's rows from `_sqlx_migrations` into `conveyor_migrations`, inside the
/// caller's transaction.
async fn adopt(tx: &mut SqliteConnection, migrator: &Migrator) -> Result<()> {
    let legacy_exists: bool = sqlx::query_scalar(
        "select count(*) > 0 from sqlite_master where type = 'table' and name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !legacy_exists {
        return Ok(());
    }
    let legacy: Vec<Applied> =
        sqlx::query_as("select version, checksum, success from _sqlx_migrations")
            .fetch_all(&mut *tx)
            .await?;
    for version in adoptable(migrator, &legacy) {
        sqlx::query(
            "insert or ignore into conveyor_migrations (version, description, installed_on, success, checksum, execution_time)
             select version, description, installed_on, success, checksum, execution_time
             from _sqlx_migrations where version = $1",
        )
        .bind(version)
        .execute(&mut *tx)
        .await?;
        sqlx::query("delete from _sqlx_migrations where version = $1")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            version,
            "moved a Conveyor migration row from _sqlx_migrations to conveyor_migrations"
        );
    }
    Ok(())
}
