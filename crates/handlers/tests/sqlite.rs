//! The pipeline contract against SQLite (`impl PipelineStore for SqliteStore`): one
//! temporary database file per case. The SQLite-only cases: the write lock
//! (`sqlite/write_lock.rs`).

#[path = "contract/mod.rs"]
mod contract;
#[path = "sqlite/write_lock.rs"]
mod write_lock;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use conveyor::{SqliteStore, Store};
use conveyor_handlers::{Embedder, HashingEmbedder, PipelineStore};

use contract::harness::{CountRow, Harness, ROLLUP_COUNTS};

/// Documents (and embeddings) enough that a search over all of them runs for tens of
/// milliseconds at least: far past a 1 ms deadline, whatever the machine.
const STALL_ROWS: usize = 20_000;

/// A migrated database in a file of its own, removed (with its WAL files) on drop.
#[derive(Debug)]
struct TestDb {
    store: SqliteStore,
    path: PathBuf,
}

impl TestDb {
    /// A fresh file under the temp dir, opened and migrated.
    async fn new() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("conveyor-test-{}.db", uuid::Uuid::new_v4()));
        let store = SqliteStore::open(&path).await?;
        store.migrate().await?;
        Ok(Self { store, path })
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

/// A statement of many virtual-machine steps (a scan of every document): a progress handler
/// left behind with a passed deadline would interrupt it.
async fn long_statement(store: &SqliteStore) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from search_documents where body like '%common%'")
        .fetch_one(store.pool())
        .await
}

impl Harness for TestDb {
    type Store = SqliteStore;
    type Stall = ();
    const CONCURRENT_RECORDS: usize = 150;
    const STALLED_SEARCH_TIMEOUT: Duration = Duration::from_millis(1);

    fn store(&self) -> &SqliteStore {
        &self.store
    }

    async fn another_store(&self) -> SqliteStore {
        SqliteStore::open(&self.path).await.expect("reopen")
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn strings(&self, sql: &str) -> Vec<String> {
        sqlx::query_scalar(sql)
            .fetch_all(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// In a write transaction of the store, behind its write lock like every writer.
    async fn exec(&self, sql: &str) {
        let mut tx = self.store.begin().await.expect("begin");
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        tx.commit().await.expect("commit");
    }

    async fn raw_group_by(&self) -> Vec<CountRow> {
        sqlx::query_as(
            "select namespace, date(ts / 1000000, 'unixepoch'), event_type, source, count(*)
               from events_raw group by 1, 2, 3, 4 order by 1, 2, 3, 4",
        )
        .fetch_all(self.store.pool())
        .await
        .expect("group by events_raw")
    }

    async fn rollup_counts(&self) -> Vec<CountRow> {
        sqlx::query_as(ROLLUP_COUNTS)
            .fetch_all(self.store.pool())
            .await
            .expect("read counts")
    }

    async fn timestamps(&self, table: &str) -> Vec<DateTime<Utc>> {
        let micros: Vec<i64> = sqlx::query_scalar(&format!("select ts from {table} order by ts"))
            .fetch_all(self.store.pool())
            .await
            .expect("timestamps");
        micros
            .into_iter()
            .map(|m| DateTime::from_timestamp_micros(m).expect("a timestamp"))
            .collect()
    }

    async fn embedding_dimensions(&self) -> Vec<i64> {
        // little-endian f32s: four bytes a dimension
        let sql = "select distinct length(embedding) from search_embeddings";
        let bytes: Vec<i64> = sqlx::query_scalar(sql)
            .fetch_all(self.store.pool())
            .await
            .expect("embedding lengths");
        bytes
            .into_iter()
            .map(|b| if b % 4 == 0 { b / 4 } else { -b })
            .collect()
    }

    async fn keyword_index_rows(&self) -> i64 {
        self.scalar("select count(*) from search_fts").await
    }

    async fn refuse_actor(&self, actor: &str) -> &'static str {
        self.exec(&format!(
            "create trigger no_boom before insert on analytics_daily_actors
             when new.actor_id = '{actor}' begin select raise(abort, 'no_boom refused'); end"
        ))
        .await;
        "no_boom refused"
    }

    async fn allow_actors(&self) {
        self.exec("drop trigger no_boom").await;
    }

    async fn stall_searches(&self) -> (SqliteStore, ()) {
        // `STALL_ROWS` documents of `acme`, every one holding the word `common`, and
        // vectors of the embedder's length (all zero: the scan reads them all, finds nothing)
        let bytes = HashingEmbedder::default().dimensions() * 4;
        self.exec(&format!(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < {STALL_ROWS})
             insert into search_documents (namespace, event_id, ts, event_type, source, body)
             select 'acme', randomblob(16), i, 'page_view', 'web',
                    'page_view web common user ' || i || ' w' || (i % 500)
               from n;
             insert into search_embeddings (namespace, event_id, ts, event_type, source, embedding)
             select namespace, event_id, ts, event_type, source, zeroblob({bytes})
               from search_documents"
        ))
        .await;
        // a pool of one connection: every statement runs where the search ran
        let single = SqliteStore::connect_with(SqliteStore::options(&self.path), 1)
            .await
            .expect("a pool of one");
        (single, ())
    }

    async fn release_searches(&self, store: &SqliteStore, (): ()) {
        // the one connection has no handler left: a long statement and searches run through
        assert_eq!(
            long_statement(store).await.expect("long statement"),
            STALL_ROWS as i64
        );
        let hits = store.keyword_search("acme", "common", 10).await;
        assert_eq!(hits.expect("keyword search").len(), 10);
        let embedder: Arc<dyn Embedder> = Arc::new(HashingEmbedder::default());
        let hits = store
            .similar_search(&embedder, "acme", "common user", 10)
            .await;
        assert!(
            hits.expect("similar search").is_empty(),
            "zero vectors are similar to nothing"
        );
    }
}

macro_rules! sqlite {
    ($($module:ident :: $case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() -> anyhow::Result<()> {
            contract::$module::$case(&TestDb::new().await?).await
        }
    )*};
}

contract::pipeline_cases!(sqlite);
