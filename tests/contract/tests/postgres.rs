//! The contract suite against the PostgreSQL backend: one fresh database per case.

use async_trait::async_trait;
use conveyor::{EventId, PgStore, Store};
use conveyor_contract::counters::{OracleRow, ORACLE};
use conveyor_contract::support::{
    RawRow, COUNT_MARKERS, CREATE_MARKERS, INSERT_MARKER, SELECT_ROW,
};
use conveyor_contract::{
    activity, admin, cancel, claim, counters, hooks, items, lease, limits, lookup, middleware,
    ordering, outcomes, parking, periodic, pool, priority, publish, stats_reads, subscription,
    Backend,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

#[path = "postgres/plans.rs"]
mod plans;

/// Run a statement that returns nothing the test needs.
async fn execute(executor: impl PgExecutor<'_>, sql: &str) {
    sqlx::query(sql).execute(executor).await.unwrap();
}

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
        execute(&admin, CREATE_MARKERS).await;
        conveyor_contract::support::init_tracing();
        Self { connect, admin }
    }
}

#[async_trait]
impl Backend for Pg {
    type S = PgStore;

    async fn store_in(&self, connections: u32, namespace: &str) -> PgStore {
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(self.connect.clone())
            .await
            .unwrap();
        PgStore::new(pool).with_namespace(namespace).unwrap()
    }

    fn with_key_window(store: PgStore, window: std::time::Duration) -> PgStore {
        store.with_idempotency_window(window)
    }

    async fn write_marker(
        tx: &mut Transaction<'static, Postgres>,
        key: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(INSERT_MARKER)
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn count_markers(&self, key: &str) -> anyhow::Result<i64> {
        let count = sqlx::query_scalar(COUNT_MARKERS).bind(key);
        Ok(count.fetch_one(&self.admin).await?)
    }

    async fn oracle(&self, namespace: &str) -> anyhow::Result<Vec<OracleRow>> {
        let rows = sqlx::query_as(ORACLE).bind(namespace);
        Ok(rows.fetch_all(&self.admin).await?)
    }

    async fn raw_row(&self, id: EventId) -> anyhow::Result<Option<RawRow>> {
        let row = sqlx::query_as(SELECT_ROW).bind(id.0);
        Ok(row.fetch_optional(&self.admin).await?)
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

/// Postgres-only: with autovacuum off for the events table, the store vacuums it itself once
/// dead rows pile up, so a long run does not bloat the claim's indexes.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn the_store_vacuums_when_autovacuum_will_not(pool: PgPool) {
    use std::time::Duration;
    let store = PgStore::new(pool.clone());
    execute(
        &pool,
        "alter table conveyor_events set (autovacuum_enabled = false)",
    )
    .await;
    assert!(!store.vacuum().await.unwrap(), "nothing to vacuum yet");
    execute(
        &pool,
        "insert into conveyor_events (namespace, event_type, payload)
         select 'default', 'contract.job', '{}' from generate_series(1, 30000)",
    )
    .await;
    execute(&pool, "delete from conveyor_events where id % 3 <> 0").await;
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

    use conveyor::HandlerOptions;
    use conveyor_contract::support::{eventually, spawn_with, stop, Job, Recorder};

    let store = PgStore::new(pool.clone());
    let recorder = Recorder::<10>::default();
    let log = recorder.log.clone();
    let idle = HandlerOptions::default().poll_interval(Duration::from_secs(60));
    let running = spawn_with(&store, recorder, idle);
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

/// Postgres-only: the flag by which the completion tells the update trigger it counted its
/// own rows covers that statement only: a later update in the same transaction (here a
/// cancel of a pending event) is counted by the trigger again.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn a_self_counted_completion_leaves_later_updates_counted(pool: PgPool) {
    use conveyor_contract::support::{claim, job_queue, publish_jobs, stats_of};
    let store = PgStore::new(pool.clone());
    let ids = publish_jobs(&store, 2).await;
    let held = claim(&store, &job_queue(), "w", 1).await;
    assert_eq!(held.len(), 1);
    let other = if held[0].id == ids[0] { ids[1] } else { ids[0] };
    let complete = include_str!("../../../crates/framework/src/store/postgres/sql/complete.sql");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(complete)
        .bind(conveyor::DEFAULT_NAMESPACE)
        .bind("w")
        .bind(vec![held[0].id.0])
        .bind(vec!["delivered"])
        .bind(vec![0.0f64])
        .bind(vec![None::<String>])
        .bind(false)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    sqlx::query("update conveyor_events set status = 'cancelled' where id = $1")
        .bind(other.0)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!(
        (
            s.pending,
            s.in_flight,
            s.delivered,
            s.cancelled,
            s.completed_total
        ),
        (0, 0, 1, 1, 1),
        "{s:?}"
    );
}
