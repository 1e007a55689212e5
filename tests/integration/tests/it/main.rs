//! End-to-end tests: one binary, one module per area.

/// The two tests of a scenario that holds on both backends: `$postgres` runs
/// `$scenario(app)` on the app `$on_postgres(pool, opts)` starts on the fresh database of
/// `#[sqlx::test]`, `$sqlite` on the app `$on_sqlite()` starts on a fresh SQLite file.
macro_rules! on_each_backend {
    (
        $scenario:ident($on_postgres:expr, $on_sqlite:expr):
        $(#[$doc:meta])* $postgres:ident, $sqlite:ident
    ) => {
        $(#[$doc])*
        #[sqlx::test(migrations = false)]
        async fn $postgres(
            pool: sqlx::postgres::PgPoolOptions,
            opts: sqlx::postgres::PgConnectOptions,
        ) {
            $scenario(($on_postgres)(pool, opts).await).await;
        }

        #[tokio::test]
        async fn $sqlite() {
            $scenario(($on_sqlite)().await).await;
        }
    };
}

mod api;
mod bench;
mod cli;
mod cli_admin;
mod cli_keys;
mod cli_lookup;
mod cli_subscriptions;
mod crash;
mod dashboard;
mod pipeline;
