//! The searches' deadline on Postgres: a transaction-local `statement_timeout`.

use std::time::Duration;

use crate::error::{Error, Result};

/// (`statement_timeout`, set transaction-locally, so the pool's connections keep their own
/// setting). Time waiting for a lock counts: a search blocked behind a migration is
/// cancelled too. Map the errors of its statements with [`timed_out`].
///
/// # Errors
/// [`crate::Error::Database`] when the transaction cannot be opened.
pub(crate) async fn begin_with_timeout(
    pool: &sqlx::PgPool,
    timeout: Duration,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    // `set local` takes no parameters; `set_config(…, true)` is the same, bindable.
    // 0 would mean "no timeout": the shortest is 1 ms.
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
    sqlx::query("select set_config('statement_timeout', $1, true)")
        .bind(format!("{ms}ms"))
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Postgres' `query_canceled`: what a statement cancelled by `statement_timeout` fails with.
const QUERY_CANCELED: &str = "57014";

/// A statement's error, as [`crate::Error::SearchTimeout`] when Postgres cancelled it.
pub(crate) fn timed_out(e: sqlx::Error, timeout: Duration) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
            Error::SearchTimeout(timeout)
        }
        _ => Error::Database(e),
    }
}
