//! [`Deadline`]: the searches' statement deadline on SQLite, which has no
//! `statement_timeout`. A progress handler on the search's connection looks at the clock
//! every [`STEPS_PER_CHECK`] virtual-machine steps and interrupts the statement once the
//! deadline has passed (`SQLITE_INTERRUPT`, read as [`Error::SearchTimeout`]), so a runaway
//! search stops in the database instead of holding a pool connection for minutes.
//!
//! Time spent inside one call of FTS5 (reading a long doclist, BM25's first call) takes no
//! virtual-machine steps: the check comes at the next step, which the caps on the query keep
//! near.

use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use crate::{Error, Result};

/// Virtual-machine steps between two looks at the clock: a row of a search takes tens, and a
/// look costs tens of nanoseconds.
const STEPS_PER_CHECK: i32 = 1_000;

/// `SQLITE_INTERRUPT`, the result code of a statement its progress handler stopped.
const INTERRUPTED: &str = "9";

/// A pool connection whose statements SQLite interrupts once `at` has passed.
///
/// End it with [`finish`](Self::finish), which removes the handler so the connection goes
/// back to the pool as it came. One dropped while still armed (its search was cancelled, say
/// by a client going away) is closed instead of returned: its handler would interrupt the
/// next borrower's statements.
pub(super) struct Deadline {
    conn: PoolConnection<Sqlite>,
    timeout: Duration,
    at: Instant,
    armed: bool,
}

impl Deadline {
    /// A connection of `pool` whose statements are interrupted `timeout` from now.
    ///
    /// # Errors
    /// [`Error::Database`] when no connection can be had.
    pub(super) async fn start(pool: &SqlitePool, timeout: Duration) -> Result<Self> {
        let mut conn = pool.acquire().await?;
        let now = Instant::now();
        let at = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
        conn.lock_handle()
            .await?
            .set_progress_handler(STEPS_PER_CHECK, move || Instant::now() < at);
        Ok(Self {
            conn,
            timeout,
            at,
            armed: true,
        })
    }

    /// The connection to run the search on.
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// When the statement is interrupted, for work done between its rows.
    pub(super) fn at(&self) -> Instant {
        self.at
    }

    /// The error a search past its deadline fails with.
    pub(super) fn expired(&self) -> Error {
        Error::SearchTimeout(self.timeout)
    }

    /// A statement's error: [`Error::SearchTimeout`] when the deadline interrupted it.
    pub(super) fn error(&self, e: sqlx::Error) -> Error {
        match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(INTERRUPTED) => {
                self.expired()
            }
            _ => Error::Database(e),
        }
    }

    /// Remove the progress handler and give the connection back to the pool.
    ///
    /// # Errors
    /// [`Error::Database`] when the connection's worker is gone (the connection is then
    /// closed).
    pub(super) async fn finish(mut self) -> Result<()> {
        self.conn.lock_handle().await?.remove_progress_handler();
        self.armed = false;
        Ok(())
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if self.armed {
            self.conn.close_on_drop();
        }
    }
}
