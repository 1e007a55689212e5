//! The connection pool options Conveyor builds its own Postgres pools with.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::Connection as _;

use super::PgStore;

/// How long a connection may sit idle in the pool before it is pinged on the way out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

impl PgStore {
    /// The pool options [`PgStore::connect`], the `conveyor` server and its benchmarks use;
    /// set `max_connections` and the timeouts you need on them, then connect.
    ///
    /// sqlx pings every connection as it leaves the pool by default (one more round trip for
    /// every store call, besides the ping it makes when the connection is returned). These
    /// options ping only a connection that sat idle for a second or more (as pgxpool does),
    /// so a connection the server closed meanwhile is still replaced before it is used,
    /// while the claims and completions of a busy worker pool make no extra round trip.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), sqlx::Error> {
    /// let pool = conveyor::PgStore::pool_options()
    ///     .max_connections(32)
    ///     .connect("postgres://localhost/app")
    ///     .await?;
    /// let store = conveyor::PgStore::new(pool);
    /// # Ok(()) }
    /// ```
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use sqlx::{Connection as _, PgConnection};

    use super::{PgStore, PING_AFTER_IDLE};

    /// The backend pid of one of `pool`'s connections.
    async fn backend_pid(pool: &sqlx::PgPool) -> sqlx::Result<i32> {
        sqlx::query_scalar("select pg_backend_pid()")
            .fetch_one(pool)
            .await
    }

    /// A connection the server closed while it sat idle is pinged, found dead and replaced
    /// before a query runs on it (sqlx's own ping on acquire is off).
    #[sqlx::test(migrations = false)]
    async fn a_connection_closed_while_idle_is_replaced_before_use(
        _: PgPoolOptions,
        options: PgConnectOptions,
    ) {
        let pool = PgStore::pool_options()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .unwrap();
        let first = backend_pid(&pool).await.unwrap();
        let mut admin = PgConnection::connect_with(&options).await.unwrap();
        let closed: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
            .bind(first)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(closed);
        tokio::time::sleep(PING_AFTER_IDLE + std::time::Duration::from_millis(200)).await;
        let second = backend_pid(&pool)
            .await
            .expect("the dead connection is replaced, not used");
        assert_ne!(first, second);
    }
}
