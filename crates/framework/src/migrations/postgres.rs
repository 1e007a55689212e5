//! The history on Postgres: one migrating process at a time per database (an advisory lock
//! held on one connection), each migration and its row in one transaction.

use std::time::Instant;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Executor as _, PgConnection, PgPool};

use super::{adoptable, pending, record, versions, Applied};
use crate::Result;

/// The advisory lock key migrations hold (any fixed value: advisory locks are per database).
const LOCK_KEY: i64 = 0x636f_6e76_6579_6f72; // "conveyor"

const CREATE: &str = "create table if not exists conveyor_migrations (
    version bigint primary key,
    description text not null,
    installed_on timestamptz not null default now(),
    success boolean not null,
    checksum bytea not null,
    execution_time bigint not null
)";

/// Apply `migrator`'s migrations that `conveyor_migrations` does not hold yet, adopting them
/// from `_sqlx_migrations` first where an earlier version of Conveyor recorded them there.
///
/// # Errors
/// [`Error::Migrate`](crate::Error::Migrate) when a migration fails (it is rolled back with
/// its row), or one of its versions is recorded as failed (`Dirty`) or with another checksum
/// (`VersionMismatch`); [`Error::Database`](crate::Error::Database) when the database fails.
pub async fn run_postgres(pool: &PgPool, migrator: &Migrator) -> Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let migrated = migrate(&mut conn, migrator).await;
    let unlocked = sqlx::query("select pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // never hand a connection that may still hold the lock back to the pool
        conn.detach();
    }
    migrated?;
    unlocked?;
    Ok(())
}

async fn migrate(conn: &mut PgConnection, migrator: &Migrator) -> Result<()> {
    conn.execute(CREATE).await?;
    adopt(conn, migrator).await?;
    let applied: Vec<Applied> =
        sqlx::query_as("select version, checksum, success from conveyor_migrations")
            .fetch_all(&mut *conn)
            .await?;
    for migration in pending(migrator, &applied)? {
        let start = Instant::now();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        tx.execute(&*migration.sql)
            .await
            .map_err(|e| MigrateError::ExecuteMigration(e, migration.version))?;
        crate::sql::execute_pg(&mut tx, record(migration, start.elapsed())).await?;
        tx.commit().await?;
        tracing::info!(version = migration.version, description = %migration.description, "applied a migration");
    }
    Ok(())
}

/// Move this set's rows from `_sqlx_migrations` (where earlier versions recorded them) into
/// `conveyor_migrations`, in one transaction.
async fn adopt(conn: &mut PgConnection, migrator: &Migrator) -> Result<()> {
    let legacy_exists: bool =
        sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
            .fetch_one(&mut *conn)
            .await?;
    if !legacy_exists {
        return Ok(());
    }
    let legacy: Vec<Applied> = sqlx::query_as(
        "select version, checksum, success from _sqlx_migrations where version = any($1)",
    )
    .bind(versions(migrator))
    .fetch_all(&mut *conn)
    .await?;
    let adopt = adoptable(migrator, &legacy);
    if adopt.is_empty() {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query(
        "insert into conveyor_migrations (version, description, installed_on, success, checksum, execution_time)
         select version, description, installed_on, success, checksum, execution_time
         from _sqlx_migrations where version = any($1)
         on conflict (version) do nothing",
    )
    .bind(&adopt)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from _sqlx_migrations where version = any($1)")
        .bind(&adopt)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(versions = ?adopt, "moved Conveyor's migration rows from _sqlx_migrations to conveyor_migrations");
    Ok(())
}
