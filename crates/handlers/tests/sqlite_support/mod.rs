//! Helpers of the SQLite pipeline tests: a migrated temporary database file per test, handler
//! runs, reads to compare, writes through the store's write lock, a background pool. Event
//! and record builders come from `common` and `search_support`.

use std::path::PathBuf;

use chrono::NaiveDate;
use conveyor::{SqliteStore, Store, WorkerPool};
use conveyor_handlers::{
    IndexRecord, IngestedEvent, PipelineStore, RawStoreHandler, RetryPolicy, RollupHandler,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) use crate::common::{deliver, drained, event};

/// A migrated database in a file of its own, removed (with its WAL files) on drop.
#[derive(Debug)]
pub(crate) struct TestDb {
    /// The store on the file.
    pub(crate) store: SqliteStore,
    path: PathBuf,
}

impl TestDb {
    /// A fresh file under the temp dir, opened and migrated.
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("conveyor-test-{}.db", uuid::Uuid::new_v4()));
        let store = SqliteStore::open(&path).await?;
        store.migrate().await?;
        Ok(Self { store, path })
    }

    /// Another store on the same file, as a second server process in this one would open.
    pub(crate) async fn reopen(&self) -> anyhow::Result<SqliteStore> {
        Ok(SqliteStore::open(&self.path).await?)
    }

    /// Another store on the same file with a pool of one connection, so every statement
    /// through it runs on the connection the one before ran on.
    pub(crate) async fn single_connection(&self) -> anyhow::Result<SqliteStore> {
        Ok(SqliteStore::connect_with(SqliteStore::options(&self.path), 1).await?)
    }

    /// The read pool.
    pub(crate) fn pool(&self) -> &sqlx::SqlitePool {
        self.store.pool()
    }

    /// A single `i64` a statement returns.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Run `sql` (one or more statements) in a write transaction of the store, behind its
    /// write lock like every writer.
    pub(crate) async fn exec(&self, sql: &str) -> anyhow::Result<()> {
        let mut tx = self.store.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// What the rollup must equal: the GROUP BY over `events_raw` (UTC days), sorted.
    pub(crate) async fn raw_group_by(&self) -> Vec<CountRow> {
        sqlx::query_as(
            "select namespace, date(ts / 1000000, 'unixepoch'), event_type, source, count(*)
               from events_raw group by 1, 2, 3, 4 order by 1, 2, 3, 4",
        )
        .fetch_all(self.pool())
        .await
        .expect("group by events_raw")
    }

    /// The rollup's daily counts, sorted like [`raw_group_by`](Self::raw_group_by).
    pub(crate) async fn rollup_counts(&self) -> Vec<CountRow> {
        sqlx::query_as(
            "select namespace, day, event_type, source, count
               from analytics_daily_event_counts order by 1, 2, 3, 4",
        )
        .fetch_all(self.pool())
        .await
        .expect("read counts")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// `(namespace, day, event_type, source, count)` rows.
pub(crate) type CountRow = (String, NaiveDate, String, String, i64);

/// Pools running in the background until [`Running::stop`].
#[derive(Debug)]
pub(crate) struct Running {
    token: CancellationToken,
    tasks: Vec<JoinHandle<conveyor::Result<()>>>,
}

impl Running {
    /// Start `pools`.
    pub(crate) fn spawn(pools: impl IntoIterator<Item = WorkerPool<SqliteStore>>) -> Self {
        let token = CancellationToken::new();
        let tasks = pools
            .into_iter()
            .map(|pool| tokio::spawn(pool.run(token.clone().cancelled_owned())))
            .collect();
        Self { token, tasks }
    }

    /// Shut the pools down and wait for them.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

/// The raw store handler with the default retries.
pub(crate) fn raw() -> RawStoreHandler {
    RawStoreHandler::new(RetryPolicy::default())
}

/// The rollup handler with the default retries.
pub(crate) fn rollup() -> RollupHandler {
    RollupHandler::new(RetryPolicy::default())
}

/// `n` events over 2026-11-22..=24, three types, two sources, four actors.
pub(crate) fn spread(n: usize) -> Vec<IngestedEvent> {
    let kinds = [("click", "web"), ("view", "ios"), ("purchase", "web")];
    (0..n)
        .map(|i| {
            let (event_type, source) = kinds[(i / 2) % 3];
            let ts = format!("2026-11-{}T{:02}:{:02}:07Z", 22 + i % 3, i % 24, i % 60);
            event(event_type, &format!("u{}", i % 4), source, &ts)
        })
        .collect()
}

/// Run one batch of `records` through the raw store, then the rollup.
pub(crate) async fn feed_both(store: &SqliteStore, records: Vec<IndexRecord>) {
    deliver(store, &raw(), records.clone()).await;
    deliver(store, &rollup(), records).await;
}

/// The event the search tests plant among the noise: `checkout_failed` by `user-7` in
/// namespace `ns` (2026-11-24 18:20 UTC), with `attributes`.
pub(crate) fn checkout_failed(ns: &str, attributes: serde_json::Value) -> IngestedEvent {
    crate::search_support::event(ns, "checkout_failed", "user-7", 500, attributes)
}
