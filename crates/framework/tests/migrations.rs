//! Conveyor's migrations beside an application's own `sqlx::migrate!()`, on both backends:
//! either order, run twice, and a database migrated by an earlier version of Conveyor (its
//! rows in `_sqlx_migrations`) adopted without re-applying anything.

use conveyor::{PgStore, SqliteStore, Store as _};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, SqlitePool};

/// An event to show the migrated outbox works.
#[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
struct Placed {
    #[garde(skip)]
    n: i64,
}

impl conveyor::Event for Placed {
    const NAME: &'static str = "placed";
}

static APP_PG: Migrator = sqlx::migrate!("tests/app_migrations/postgres");
static APP_SQLITE: Migrator = sqlx::migrate!("tests/app_migrations/sqlite");

async fn pg_versions(pool: &PgPool, table: &str) -> Vec<i64> {
    sqlx::query_scalar(&format!("select version from {table} order by version"))
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn sqlite_versions(pool: &SqlitePool, table: &str) -> Vec<i64> {
    sqlx::query_scalar(&format!("select version from {table} order by version"))
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The app's migrator refused Conveyor's rows in `_sqlx_migrations`: the clash the own
/// history removes.
fn assert_clash(run: Result<(), sqlx::migrate::MigrateError>) {
    let refused = run.expect_err("the app's migrator refuses Conveyor's versions");
    assert!(
        refused.to_string().contains("previously applied"),
        "{refused}"
    );
}

fn conveyor_versions() -> Vec<i64> {
    conveyor::MIGRATOR.iter().map(|m| m.version).collect()
}

fn app_versions() -> Vec<i64> {
    APP_PG.iter().map(|m| m.version).collect()
}

async fn connect(opts: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn app_first_then_conveyor_twice_on_postgres(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = connect(opts).await;
    let store = PgStore::new(pool.clone());
    for _ in 0..2 {
        APP_PG.run(&pool).await.expect("the app's migrations");
        store.migrate().await.expect("Conveyor's migrations");
    }
    assert_eq!(pg_versions(&pool, "_sqlx_migrations").await, app_versions());
    assert_eq!(
        pg_versions(&pool, "conveyor_migrations").await,
        conveyor_versions()
    );
    store.publish(Placed { n: 1 }).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn conveyor_first_then_app_twice_on_postgres(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = connect(opts).await;
    let store = PgStore::new(pool.clone());
    for _ in 0..2 {
        store.migrate().await.expect("Conveyor's migrations");
        APP_PG.run(&pool).await.expect("the app's migrations");
    }
    assert_eq!(pg_versions(&pool, "_sqlx_migrations").await, app_versions());
    assert_eq!(
        pg_versions(&pool, "conveyor_migrations").await,
        conveyor_versions()
    );
}

#[sqlx::test(migrations = false)]
async fn concurrent_migrations_apply_once_on_postgres(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = connect(opts).await;
    let (a, b) = (PgStore::new(pool.clone()), PgStore::new(pool.clone()));
    let (x, y) = tokio::join!(a.migrate(), b.migrate());
    x.unwrap();
    y.unwrap();
    assert_eq!(
        pg_versions(&pool, "conveyor_migrations").await,
        conveyor_versions()
    );
}

/// A database migrated the old way (`conveyor::MIGRATOR.run`, rows in `_sqlx_migrations`)
/// made the app's migrator fail; `migrate()` moves Conveyor's rows to its own history
/// without re-applying anything, and the app's migrator then runs.
#[sqlx::test(migrations = false)]
async fn an_earlier_versions_rows_are_adopted_on_postgres(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // one connection: sqlx's migrator returns the clash error without releasing its
    // advisory lock, and on another connection the app's next run would wait for it forever
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    conveyor::MIGRATOR.run(&pool).await.unwrap();
    let store = PgStore::new(pool.clone());
    store.publish(Placed { n: 1 }).await.unwrap();
    assert_clash(APP_PG.run(&pool).await);

    store.migrate().await.expect("adopting the earlier rows");
    APP_PG
        .run(&pool)
        .await
        .expect("the app's migrations after adoption");
    store.migrate().await.unwrap();
    assert_eq!(pg_versions(&pool, "_sqlx_migrations").await, app_versions());
    assert_eq!(
        pg_versions(&pool, "conveyor_migrations").await,
        conveyor_versions()
    );
    let kept: i64 = sqlx::query_scalar("select count(*) from conveyor_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "nothing was re-applied over the existing tables");
}

/// A migration recorded with another checksum (an edited file) is refused, naming it.
#[sqlx::test(migrations = false)]
async fn a_changed_migration_is_refused_on_postgres(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = connect(opts).await;
    let store = PgStore::new(pool.clone());
    store.migrate().await.unwrap();
    sqlx::query("update conveyor_migrations set checksum = '\\x00'::bytea")
        .execute(&pool)
        .await
        .unwrap();
    let refused = store.migrate().await.expect_err("a changed migration");
    let version = conveyor_versions()[0].to_string();
    assert!(refused.to_string().contains(&version), "{refused}");
}

fn temp_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "conveyor-migrations-{}.db",
        uuid::Uuid::new_v4().simple()
    ))
}

async fn app_sqlite_pool(path: &std::path::Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteStore::options(path))
        .await
        .unwrap()
}

#[tokio::test]
async fn both_orders_twice_on_sqlite() {
    for app_first in [true, false] {
        let path = temp_file();
        let app = app_sqlite_pool(&path).await;
        for _ in 0..2 {
            if app_first {
                APP_SQLITE.run(&app).await.expect("the app's migrations");
            }
            let store = SqliteStore::open(&path)
                .await
                .expect("Conveyor's migrations");
            if !app_first {
                APP_SQLITE.run(&app).await.expect("the app's migrations");
            }
            store.publish(Placed { n: 1 }).await.unwrap();
            store.pool().close().await;
        }
        assert_eq!(
            sqlite_versions(&app, "_sqlx_migrations").await,
            app_versions()
        );
        assert_eq!(
            sqlite_versions(&app, "conveyor_migrations").await,
            conveyor_versions()
        );
        app.close().await;
        std::fs::remove_file(&path).ok();
    }
}

#[tokio::test]
async fn an_earlier_versions_rows_are_adopted_on_sqlite() {
    let path = temp_file();
    let app = app_sqlite_pool(&path).await;
    conveyor::SQLITE_MIGRATOR.run(&app).await.unwrap();
    assert_clash(APP_SQLITE.run(&app).await);

    let store = SqliteStore::open(&path)
        .await
        .expect("adopting the earlier rows");
    APP_SQLITE
        .run(&app)
        .await
        .expect("the app's migrations after adoption");
    assert_eq!(
        sqlite_versions(&app, "_sqlx_migrations").await,
        app_versions()
    );
    let own: Vec<i64> = conveyor::SQLITE_MIGRATOR
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(sqlite_versions(&app, "conveyor_migrations").await, own);
    store.pool().close().await;
    app.close().await;
    std::fs::remove_file(&path).ok();
}

/// The cancel migration rebuilds SQLite's events table (its status check cannot be altered in
/// place): the rows and the id counter survive it, so an id is never reused even after the
/// newest rows were pruned, and the new status works at once.
#[tokio::test]
async fn the_cancel_migration_keeps_the_rows_and_the_id_counter_on_sqlite() {
    let path = temp_file();
    let pool = app_sqlite_pool(&path).await;
    let earlier = conveyor::SQLITE_MIGRATOR
        .iter()
        .filter(|m| m.version < 20261203000001)
        .cloned()
        .collect::<Vec<_>>();
    let earlier = Migrator {
        migrations: std::borrow::Cow::Owned(earlier),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    };
    conveyor::migrations::run_sqlite(&pool, &earlier)
        .await
        .unwrap();
    sqlx::query(
        "insert into conveyor_events (namespace, event_type, payload, status, attempts,
                                      last_error, available_at, created_at, updated_at)
         values ('default', 'placed', '{\"n\":1}', 'pending', 0, null, 0, 0, 0),
                ('default', 'placed', '{\"n\":2}', 'dead', 3, 'boom', 0, 0, 0),
                ('default', 'placed', '{\"n\":3}', 'delivered', 1, null, 0, 0, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("delete from conveyor_events where id = 3")
        .execute(&pool)
        .await
        .unwrap();

    let store = SqliteStore::open(&path)
        .await
        .expect("the cancel migration");
    let rows: Vec<(i64, String, i64, Option<String>)> =
        sqlx::query_as("select id, status, attempts, last_error from conveyor_events order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (1, "pending".to_owned(), 0, None),
            (2, "dead".to_owned(), 3, Some("boom".to_owned()))
        ]
    );
    let next = store.publish(Placed { n: 4 }).await.unwrap().id().unwrap();
    assert_eq!(next.0, 4, "id 3 is never reused");
    let report = store
        .cancel(&[conveyor::EventId(1)], "migrated")
        .await
        .unwrap();
    assert_eq!(
        report.results,
        [(conveyor::EventId(1), conveyor::CancelOutcome::Cancelled)]
    );
    assert_eq!(
        sqlite_versions(&pool, "conveyor_migrations").await,
        conveyor_versions()
    );
    store.pool().close().await;
    pool.close().await;
    std::fs::remove_file(&path).ok();
}
