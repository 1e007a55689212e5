//! The contract suite against the PostgreSQL backend: one fresh database per case.

use async_trait::async_trait;
use conveyor::{PgStore, Store};
use conveyor_contract::{admin, claim, lease, outcomes, pool, publish, Backend};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

struct Pg {
    connect: PgConnectOptions,
    admin: PgPool,
}

impl Pg {
    async fn new(connect: PgConnectOptions) -> Self {
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(connect.clone())
            .await
            .unwrap();
        sqlx::query("create table if not exists contract_markers (key text not null)")
            .execute(&admin)
            .await
            .unwrap();
        conveyor_contract::support::init_tracing();
        Self { connect, admin }
    }
}

#[async_trait]
impl Backend for Pg {
    type S = PgStore;

    async fn store(&self, connections: u32) -> PgStore {
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(self.connect.clone())
            .await
            .unwrap();
        PgStore::new(pool)
    }

    async fn write_marker(
        tx: &mut Transaction<'static, Postgres>,
        key: &str,
    ) -> anyhow::Result<()> {
        sqlx::query("insert into contract_markers (key) values ($1)")
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn count_markers(&self, key: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("select count(*) from contract_markers where key = $1")
                .bind(key)
                .fetch_one(&self.admin)
                .await?,
        )
    }
}

macro_rules! contract {
    ($($module:ident :: $case:ident),* $(,)?) => {$(
        #[sqlx::test(migrator = "conveyor::MIGRATOR")]
        async fn $case(_: PgPoolOptions, connect: PgConnectOptions) {
            $module::$case(&Pg::new(connect).await).await;
        }
    )*};
}

conveyor_contract::every_case!(contract);

#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn namespaces_are_isolated(_: PgPoolOptions, connect: PgConnectOptions) {
    let pg = Pg::new(connect).await;
    let a = pg.store(2).await.with_namespace("tenant-a").unwrap();
    let b = pg.store(2).await.with_namespace("tenant-b").unwrap();
    admin::namespaces_are_isolated(a, b).await;
}

/// Postgres-only: an event published inside the caller's transaction exists only if it commits.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn publish_in_transaction_commits_or_rolls_back_with_it(pool: PgPool) {
    use conveyor_contract::support::{job_queue, stats_of, Job};
    let store = PgStore::new(pool.clone());
    let mut tx = pool.begin().await.unwrap();
    store.publish_in(&mut *tx, Job { n: 1 }).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 0);

    let mut tx = pool.begin().await.unwrap();
    store
        .publish_batch_in(&mut *tx, vec![Job { n: 2 }, Job { n: 3 }])
        .await
        .unwrap();
    assert_eq!(
        stats_of(&store, &job_queue()).await.pending,
        0,
        "invisible before commit"
    );
    tx.commit().await.unwrap();
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 2);
}

/// Postgres-only: the claim stays an index scan on the partial pending index as a generic
/// (prepared) plan, however many rows the table holds.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn claim_uses_the_pending_index_in_its_generic_plan(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query(
        "insert into conveyor_events (namespace, event_type, payload, status)
         select 'default', 'contract.job', '{}', case when g % 100 = 0 then 'pending' else 'delivered' end::conveyor_event_status
           from generate_series(1, 50000) g",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("analyze conveyor_events")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("set plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    let claim = include_str!("../../../crates/framework/src/store/postgres/sql/claim.sql");
    sqlx::query(&format!(
        "prepare claim_plan(text, text, text, text, bigint, float8, text) as {claim}"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "explain execute claim_plan('default', 'contract.job', '', 'w', 100, 30000, '')",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("conveyor_events_pending_idx"), "{plan}");
    assert!(!plan.contains("Seq Scan on conveyor_events"), "{plan}");
}

/// Postgres-only: with autovacuum off for the events table, the store vacuums it itself once
/// dead rows pile up, so a long run does not bloat the claim's indexes.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn the_store_vacuums_when_autovacuum_will_not(pool: PgPool) {
    use std::time::Duration;
    let store = PgStore::new(pool.clone());
    sqlx::query("alter table conveyor_events set (autovacuum_enabled = false)")
        .execute(&pool)
        .await
        .unwrap();
    assert!(!store.vacuum().await.unwrap(), "nothing to vacuum yet");
    sqlx::query(
        "insert into conveyor_events (namespace, event_type, payload)
         select 'default', 'contract.job', '{}' from generate_series(1, 30000)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("delete from conveyor_events where id % 3 <> 0")
        .execute(&pool)
        .await
        .unwrap();
    let dead = || async {
        sqlx::query_scalar::<_, i64>(
            "select n_dead_tup from pg_stat_user_tables where relname = 'conveyor_events'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    conveyor_contract::support::eventually(
        Duration::from_secs(10),
        "dead rows counted",
        || async { dead().await > 10_000 },
    )
    .await;
    assert!(
        store.vacuum().await.unwrap(),
        "20,000 dead rows call for a vacuum"
    );
    conveyor_contract::support::eventually(
        Duration::from_secs(10),
        "dead rows vacuumed",
        || async { dead().await < 1_000 },
    )
    .await;
}

/// Postgres-only: a deferred publish wakes nobody at its commit; its `Wakeup`, sent after
/// the commit, wakes an idle pool at once.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn a_deferred_publish_wakes_only_when_its_wakeup_is_sent(pool: PgPool) {
    use std::time::Duration;

    use conveyor::{HandlerOptions, WorkerPool};
    use conveyor_contract::support::{eventually, spawn, stop, Job, Recorder};

    let store = PgStore::new(pool.clone());
    let recorder = Recorder::<10>::default();
    let log = recorder.log.clone();
    let running = spawn(
        WorkerPool::builder(store.clone())
            .register_with(
                recorder,
                HandlerOptions::default().poll_interval(Duration::from_secs(60)),
            )
            .build()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // the pool is idle and listening

    let mut tx = pool.begin().await.unwrap();
    let (report, wakeup) = store
        .publish_batch_in_deferred(&mut *tx, vec![Job { n: 1 }])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(report.inserted().count(), 1);
    assert!(!wakeup.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(log.distinct(), 0, "the commit woke nobody");

    store.wake(wakeup).await.unwrap();
    eventually(
        Duration::from_secs(1),
        "the wake-up to start the job",
        || {
            let log = log.clone();
            async move { log.distinct() == 1 }
        },
    )
    .await;
    stop(running).await;
}
