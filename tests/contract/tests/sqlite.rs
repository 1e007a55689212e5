//! The contract suite against the SQLite backend: one fresh database file per case.

use std::path::PathBuf;

use async_trait::async_trait;
use conveyor::{EventId, SqliteStore, SqliteTx, Store};
use conveyor_contract::counters::{OracleRow, ORACLE};
use conveyor_contract::support::{
    RawRow, COUNT_MARKERS, CREATE_MARKERS, INSERT_MARKER, SELECT_ROW,
};
use conveyor_contract::{
    activity, admin, cancel, claim, counters, hooks, items, lease, limits, lookup, middleware,
    ordering, outcomes, parking, periodic, pool, priority, publish, stats_reads, subscription,
    Backend,
};

/// Run `statement` in a transaction of its own on `store`, and commit it.
async fn execute(store: &SqliteStore, statement: &str) {
    let mut tx = store.begin().await.unwrap();
    sqlx::query(statement).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// The text of the store's statement `file` (in crates/framework/src/store/sqlite/sql).
fn statement(file: &str) -> String {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/framework/src/store/sqlite/sql"
    );
    std::fs::read_to_string(format!("{dir}/{file}.sql")).unwrap()
}

/// The `explain query plan` of `sql` with each of its `params` parameters bound to `value`:
/// one line per step of the plan.
async fn query_plan<T>(store: &SqliteStore, sql: &str, params: usize, value: T) -> Vec<String>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Clone + Send,
{
    let explain = format!("explain query plan {sql}");
    let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
    for _ in 0..params {
        query = query.bind(value.clone());
    }
    query
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.3)
        .collect()
}

/// A database file of its own, deleted (with its WAL files) when the case ends.
struct Sqlite {
    path: PathBuf,
    admin: SqliteStore,
}

impl Sqlite {
    async fn new() -> Self {
        conveyor_contract::support::init_tracing();
        let path = std::env::temp_dir().join(format!(
            "conveyor-contract-{}-{}.db",
            std::process::id(),
            fastrand::u64(..)
        ));
        let admin = SqliteStore::open(&path).await.unwrap();
        execute(&admin, CREATE_MARKERS).await;
        Self { path, admin }
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

#[async_trait]
impl Backend for Sqlite {
    type S = SqliteStore;

    async fn store_in(&self, connections: u32, namespace: &str) -> SqliteStore {
        SqliteStore::connect_with(SqliteStore::options(&self.path), connections)
            .await
            .unwrap()
            .with_namespace(namespace)
            .unwrap()
    }

    fn with_key_window(store: SqliteStore, window: std::time::Duration) -> SqliteStore {
        store.with_idempotency_window(window)
    }

    async fn write_marker(tx: &mut SqliteTx, key: &str) -> anyhow::Result<()> {
        sqlx::query(INSERT_MARKER)
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn count_markers(&self, key: &str) -> anyhow::Result<i64> {
        let count = sqlx::query_scalar(COUNT_MARKERS).bind(key);
        Ok(count.fetch_one(self.admin.pool()).await?)
    }

    async fn oracle(&self, namespace: &str) -> anyhow::Result<Vec<OracleRow>> {
        let rows = sqlx::query_as(ORACLE).bind(namespace);
        Ok(rows.fetch_all(self.admin.pool()).await?)
    }

    async fn raw_row(&self, id: EventId) -> anyhow::Result<Option<RawRow>> {
        let row = sqlx::query_as(SELECT_ROW).bind(id.0);
        Ok(row.fetch_optional(self.admin.pool()).await?)
    }
}

macro_rules! contract {
    ($($module:ident :: $case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            $module::$case(&Sqlite::new().await).await;
        }
    )*};
}

conveyor_contract::every_case!(contract);

/// SQLite-only: a second write while this task holds the store's transaction fails after
/// the lock timeout with a clear error instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_behind_an_open_transaction_fails_with_database_is_locked() {
    use conveyor_contract::support::Job;
    let db = Sqlite::new().await;
    let store = db.store(4).await;
    let held = store.begin().await.unwrap();
    let started = std::time::Instant::now();
    let err = store.publish(Job { n: 1 }).await.unwrap_err();
    assert!(err.to_string().contains("database is locked"), "{err}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    drop(held);
    store.publish(Job { n: 2 }).await.unwrap();
}

/// SQLite-only: the statements that take a list of ids look rows up by id, never walking an
/// index over the namespace's pending or dead rows (what the planner picks on a table that
/// was never analyzed, unless told otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn id_list_statements_look_up_rows_by_id() {
    let db = Sqlite::new().await;
    let store = db.store(2).await;
    execute(
        &store,
        "with recursive g(n) as (select 1 union all select n + 1 from g where n < 20000)
         insert into conveyor_events (namespace, event_type, payload, status, available_at,
                                      created_at, updated_at)
         select 'default', 'contract.job', '{}', case when n % 2 = 0 then 'dead' else 'pending' end,
                0, 0, 0 from g",
    )
    .await;
    for file in [
        "cancel",
        "cancel_statuses",
        "claim_lease",
        "complete",
        "complete_delete",
        "release",
        "renew",
        "replay",
    ] {
        let sql = statement(file);
        let params = sql.matches('$').count();
        let plan = query_plan(&store, &sql, params, String::from("[1, 2, 3]")).await;
        let plan = plan.join("\n");
        assert!(
            plan.contains("SEARCH conveyor_events USING INTEGER PRIMARY KEY"),
            "{file}: {plan}"
        );
        assert!(!plan.contains("_idx"), "{file} walks an index: {plan}");
    }
}

/// SQLite-only: each statement of the claim (the gate and group walk, the priority levels with the
/// highest level's due events, the pick of another level's due events) seeks or ranges over
/// the pending index in its order: never a scan of the table and never a sort of a group's
/// backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_statements_walk_the_pending_index_in_order() {
    let db = Sqlite::new().await;
    let store = db.store(2).await;
    execute(
        &store,
        "with recursive g(n) as (select 1 union all select n + 1 from g where n < 20000)
         insert into conveyor_events (namespace, event_type, payload, status, available_at,
                                      fairness_key, priority, created_at, updated_at)
         select 'default', 'contract.job', '{}', case when n % 2 = 0 then 'delivered' else 'pending' end,
                n % 10, 'g' || (n % 3), (n % 7) - 3, 0, 0 from g",
    )
    .await;
    for (file, seeks) in [
        ("claim_groups", 4),
        ("claim_top_level", 3),
        ("claim_pick", 1),
    ] {
        let sql = statement(file);
        let params = (1..=20)
            .rev()
            .find(|n| sql.contains(&format!("${n}")))
            .unwrap();
        let plan = query_plan(&store, &sql, params, 1).await;
        let on_index = plan
            .iter()
            .filter(|l| l.contains("USING COVERING INDEX conveyor_events_pending_idx"))
            .count();
        let plan = plan.join("\n");
        assert_eq!(on_index, seeks, "{file}: {plan}");
        assert!(
            !plan.contains("SCAN conveyor_events"),
            "{file} scans: {plan}"
        );
        // the gate counts a limited queue's claimed rows over the claimed index: O(in flight)
        let scans = plan
            .lines()
            .filter(|l| l.contains("SCAN e") && !l.contains("conveyor_events_claimed_idx"));
        assert_eq!(scans.count(), 0, "{file} scans: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{file} sorts: {plan}");
    }
}
