//! [`is_outage`]: whether a database error means "the database cannot take this right now"
//! (the log's publisher waits and retries the batch, reads answer 503) or "the database refuses these rows"
//! (no retry fixes it). One classification for both backends.
//!
//! # Postgres
//! Connection failures, pool timeouts, and the SQLSTATE classes 08 (connection exception),
//! 53 (insufficient resources) and 57 (operator intervention, e.g. shutting down).
//!
//! # SQLite
//! The database is a local file, so "down" means the file cannot be written now, for reasons
//! an operator or time fixes, never the rows themselves. Counted as outages (by primary
//! result code, <https://www.sqlite.org/rescode.html>):
//! - `SQLITE_BUSY` / `SQLITE_LOCKED` (`database is locked`): another process (an operator's
//!   `sqlite3` shell, a second server) held the write lock past the 5 s busy timeout. The
//!   store's own in-process write lock timing out is reported the same way (as a protocol
//!   error). Retrying later succeeds, so the publisher waits; the batch stays in the log.
//! - `SQLITE_IOERR` (disk I/O error), `SQLITE_FULL` (disk full), `SQLITE_CANTOPEN`,
//!   `SQLITE_READONLY` (file or file system made read-only), `SQLITE_NOMEM`,
//!   `SQLITE_PROTOCOL` (WAL lock race): the storage is failing. Acknowledged requests wait in
//!   the ingestion log; if the log sits on the same failing disk it fails too and the API
//!   answers 503, which is the truth.
//! - `SQLITE_CORRUPT` / `SQLITE_NOTADB`: the file is damaged. No retry of the statement helps,
//!   but neither is it the rows' fault: until an operator restores the file, accepted batches
//!   wait in the ingestion log (retried with backoff) rather than being refused or set aside.
//!
//! Everything else (`SQLITE_CONSTRAINT`, `SQLITE_TOOBIG`, `SQLITE_MISMATCH`, a plain
//! `SQLITE_ERROR` from a bad statement) is about the rows or the SQL: not an outage.

use sqlx::sqlite::SqliteError;

/// SQLite primary result codes that mean the file cannot be written right now.
const SQLITE_OUTAGE_CODES: [i32; 10] = [
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    7,  // SQLITE_NOMEM
    8,  // SQLITE_READONLY
    10, // SQLITE_IOERR
    11, // SQLITE_CORRUPT
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
    15, // SQLITE_PROTOCOL
    26, // SQLITE_NOTADB
];

/// Whether `error` means the database cannot be reached or cannot take writes right now
/// (worth waiting for and retrying), as opposed to refusing these particular rows. See the
/// module docs for the classes counted, per backend.
pub(crate) fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) if db.try_downcast_ref::<SqliteError>().is_some() => {
            sqlite_outage(db.code().as_deref())
        }
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["08", "53", "57"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// [`is_outage`] for the framework's errors: only database errors can be outages.
pub(crate) fn is_store_outage(error: &conveyor::Error) -> bool {
    matches!(error, conveyor::Error::Database(e) if is_outage(e))
}

/// Whether a SQLite extended result code (as sqlx renders it) is one of the outage classes.
fn sqlite_outage(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|extended| SQLITE_OUTAGE_CODES.contains(&(extended & 0xff)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_are_classified_by_their_primary_code() {
        // SQLITE_BUSY, SQLITE_IOERR_WRITE (778), SQLITE_FULL, SQLITE_BUSY_SNAPSHOT (517)
        for code in ["5", "778", "13", "517", "26"] {
            assert!(sqlite_outage(Some(code)), "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR, SQLITE_TOOBIG
        for code in ["2067", "1", "18"] {
            assert!(!sqlite_outage(Some(code)), "{code}");
        }
        assert!(!sqlite_outage(None));
    }

    #[test]
    fn connection_failures_are_outages_and_bad_rows_are_not() {
        assert!(is_outage(&sqlx::Error::PoolClosed));
        assert!(is_outage(&sqlx::Error::Protocol(
            "database is locked".into()
        )));
        assert!(!is_outage(&sqlx::Error::RowNotFound));
        assert!(is_store_outage(&conveyor::Error::Database(
            sqlx::Error::PoolTimedOut
        )));
        assert!(!is_store_outage(&conveyor::Error::Config("x".into())));
    }

    #[tokio::test]
    async fn a_locked_sqlite_file_is_an_outage() {
        use sqlx::sqlite::SqliteConnectOptions;
        use sqlx::{ConnectOptions as _, Connection as _};
        let file =
            std::env::temp_dir().join(format!("conveyor-outage-{}.db", uuid::Uuid::new_v4()));
        let options = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_millis(10));
        let mut holder = options.connect().await.unwrap();
        sqlx::query("create table t (x)")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut tx = holder.begin().await.unwrap();
        sqlx::query("insert into t values (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let mut other = options.connect().await.unwrap();
        let err = sqlx::query("insert into t values (2)")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(is_outage(&err), "{err}");
        let refused = sqlx::query("insert into missing values (1)")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(!is_outage(&refused), "{refused}");
        drop(tx);
        std::fs::remove_file(file).ok();
    }
}
