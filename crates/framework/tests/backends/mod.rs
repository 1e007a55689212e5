//! What the framework's test files share: a migrated Postgres store on a `#[sqlx::test]`
//! pool, and `on_both_backends!`.

use conveyor::PgStore;
use sqlx::PgPool;

/// A Postgres store on `pool` (a fresh `#[sqlx::test(migrations = false)]` database), migrated.
pub(crate) async fn pg(pool: PgPool) -> PgStore {
    let store = PgStore::new(pool);
    store.migrate().await.unwrap();
    store
}

/// Runs `$body` (an async fn taking `&S`) on Postgres and on a temporary SQLite file; the
/// caller has `pg` (above) and `conveyor::testing` in scope.
macro_rules! on_both_backends {
    ($body:ident, $pg:ident, $sqlite:ident) => {
        #[sqlx::test(migrations = false)]
        async fn $pg(pool: PgPool) {
            $body(&pg(pool).await).await;
        }

        #[tokio::test]
        async fn $sqlite() {
            $body(&*testing::sqlite().await.unwrap()).await;
        }
    };
}
