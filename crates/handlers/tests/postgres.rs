//! The pipeline contract against Postgres (`impl PipelineStore for PgStore`): one fresh
//! database per case (`#[sqlx::test]` without the framework's migrations; the harness runs
//! the pipeline's `migrate` and creates the day partitions). The Postgres-only cases (day
//! partitions) are in `postgres/partitions.rs`.

#[path = "contract/mod.rs"]
mod contract;
#[path = "postgres/partitions.rs"]
mod partitions;

use std::time::Duration;

use chrono::{DateTime, Utc};
use conveyor::PgStore;
use conveyor_handlers::{Embedder, HashingEmbedder, PipelineStore, SearchQuery};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use contract::fixtures::{manager, today};
use contract::harness::{CountRow, Harness, ROLLUP_COUNTS};

/// A migrated database with the day partitions around [`today`].
struct Pg {
    connect: PgConnectOptions,
    pool: PgPool,
    store: PgStore,
}

impl Pg {
    async fn new(connect: PgConnectOptions) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(12)
            .connect_with(connect.clone())
            .await?;
        conveyor_handlers::migrate(&pool).await?;
        manager().maintain(&pool, today()).await?;
        let store = PgStore::new(pool.clone());
        Ok(Self {
            connect,
            pool,
            store,
        })
    }
}

/// What holds Postgres' searches up: a transaction locking the search tables, and the
/// searches' connection's `statement_timeout` before.
struct Lock {
    blocker: Transaction<'static, Postgres>,
    setting: String,
}

async fn statement_timeout(store: &PgStore) -> String {
    sqlx::query_scalar("show statement_timeout")
        .fetch_one(store.pool())
        .await
        .expect("show statement_timeout")
}

impl Harness for Pg {
    type Store = PgStore;
    type Stall = Lock;
    const CONCURRENT_RECORDS: usize = 400;
    const STALLED_SEARCH_TIMEOUT: Duration = Duration::from_millis(100);

    fn store(&self) -> &PgStore {
        &self.store
    }

    async fn another_store(&self) -> PgStore {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(self.connect.clone())
            .await
            .expect("another pool");
        PgStore::new(pool)
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn strings(&self, sql: &str) -> Vec<String> {
        sqlx::query_scalar(sql)
            .fetch_all(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sql)
            .execute(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn raw_group_by(&self) -> Vec<CountRow> {
        sqlx::query_as(
            "select namespace, (ts at time zone 'UTC')::date, event_type, source, count(*)
               from events_raw group by 1, 2, 3, 4 order by 1, 2, 3, 4",
        )
        .fetch_all(&self.pool)
        .await
        .expect("group by events_raw")
    }

    async fn rollup_counts(&self) -> Vec<CountRow> {
        sqlx::query_as(ROLLUP_COUNTS)
            .fetch_all(&self.pool)
            .await
            .expect("read counts")
    }

    async fn timestamps(&self, table: &str) -> Vec<DateTime<Utc>> {
        sqlx::query_scalar(&format!("select ts from {table} order by ts"))
            .fetch_all(&self.pool)
            .await
            .expect("timestamps")
    }

    async fn embedding_dimensions(&self) -> Vec<i64> {
        let sql = "select distinct cardinality(embedding)::bigint from search_embeddings";
        sqlx::query_scalar(sql)
            .fetch_all(&self.pool)
            .await
            .expect("embedding lengths")
    }

    async fn keyword_index_rows(&self) -> i64 {
        // the tsvector is a column of the document row: the index is the table
        self.scalar("select count(*) from search_documents").await
    }

    async fn refuse_actor(&self, actor: &str) -> &'static str {
        self.exec(&format!(
            "alter table analytics_daily_actors add constraint no_boom check (actor_id <> '{actor}')"
        ))
        .await;
        "no_boom"
    }

    async fn allow_actors(&self) {
        self.exec("alter table analytics_daily_actors drop constraint no_boom")
            .await;
    }

    async fn stall_searches(&self) -> (PgStore, Lock) {
        // the searches' own pool of one connection, to read its settings afterwards
        let single = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.connect.clone())
            .await
            .expect("a pool of one");
        let store = PgStore::new(single);
        let setting = statement_timeout(&store).await;
        // without a deadline, a search waits for this lock as long as it is held
        let mut blocker = self.pool.begin().await.expect("begin");
        sqlx::query("lock table search_documents, search_embeddings in access exclusive mode")
            .execute(&mut *blocker)
            .await
            .expect("lock the search tables");
        (store, Lock { blocker, setting })
    }

    async fn release_searches(&self, store: &PgStore, stall: Lock) {
        stall.blocker.rollback().await.expect("rollback");
        // the same searches answer, and their timeout was their transactions' own
        let timeout = Self::STALLED_SEARCH_TIMEOUT;
        let embedder: std::sync::Arc<dyn Embedder> =
            std::sync::Arc::new(HashingEmbedder::default());
        let hits =
            store.keyword_search_within(SearchQuery::new("acme", "common", 10).within(timeout));
        assert!(hits.await.expect("keyword search").is_empty());
        let hits = store.similar_search_within(
            &embedder,
            SearchQuery::new("acme", "common user", 10).within(timeout),
        );
        assert!(hits.await.expect("similar search").is_empty());
        assert_eq!(statement_timeout(store).await, stall.setting);
    }
}

macro_rules! postgres {
    ($($module:ident :: $case:ident),* $(,)?) => {$(
        #[sqlx::test(migrations = false)]
        async fn $case(_: PgPoolOptions, connect: PgConnectOptions) -> anyhow::Result<()> {
            contract::$module::$case(&Pg::new(connect).await?).await
        }
    )*};
}

contract::pipeline_cases!(postgres);
