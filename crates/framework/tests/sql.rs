//! One handler, written once over `SqlStore`, running its SQL in the batch's transaction on
//! Postgres and on SQLite: writes, reads back, and rolls back with the batch.

use std::time::{Duration, Instant};

use conveyor::Store as _;
use conveyor::{
    sql, Batch, Context, EventHandler, HandlerError, PgStore, SqlStore, SqliteStore, WorkerPool,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
struct Booked {
    #[garde(skip)]
    order_id: String,
    #[garde(skip)]
    cents: i64,
}

impl conveyor::Event for Booked {
    const NAME: &'static str = "booked";
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Row {
    order_id: String,
    cents: i64,
}

/// Books each order once, then reads its own write back inside the same transaction; an
/// order with `cents < 0` fails the whole batch after its insert (which must roll back).
struct Book;

#[async_trait::async_trait]
impl<S: SqlStore> EventHandler<S> for Book {
    type Event = Booked;
    const BATCH_SIZE: usize = 1;
    const MAX_RETRIES: u32 = 0;

    async fn handle(
        &self,
        batch: Batch<Booked>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            let p = &item.payload;
            let inserted = ctx
                .execute(
                    sql("insert into booked (order_id, cents) values ($1, $2) on conflict (order_id) do nothing")
                        .bind(p.order_id.as_str())
                        .bind(p.cents),
                )
                .await?;
            assert_eq!(inserted, 1);
            let row: Row = ctx
                .fetch_one(
                    sql("select order_id, cents from booked where order_id = $1")
                        .bind(p.order_id.clone()),
                )
                .await?;
            assert_eq!(
                row,
                Row {
                    order_id: p.order_id.clone(),
                    cents: p.cents
                }
            );
            let missing: Option<(i64,)> = ctx
                .fetch_optional(sql("select cents from booked where order_id = $1").bind("nobody"))
                .await?;
            assert!(missing.is_none());
            if p.cents < 0 {
                return Err(HandlerError::fail("negative amount"));
            }
        }
        Ok(())
    }
}

const CREATE: &str = "create table booked (order_id text primary key, cents bigint not null)";

/// Publish 25 orders (one with a negative amount) and run a pool until none is due; the
/// negative one is dead-lettered and its batch's writes rolled back.
async fn book_on<S: SqlStore>(store: S) {
    let orders = (0..25).map(|i| Booked {
        order_id: format!("o-{i}"),
        cents: if i == 7 { -1 } else { 100 + i },
    });
    // BATCH_SIZE 1: the failing batch holds only the negative order
    for order in orders {
        store.publish(order).await.unwrap();
    }
    let pool = WorkerPool::builder(store.clone())
        .register(Book)
        .build()
        .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(pool.run(token.clone().cancelled_owned()));
    let start = Instant::now();
    loop {
        let stats = store.stats().await.unwrap();
        if stats
            .iter()
            .map(|s| s.pending + s.in_flight + s.retrying)
            .sum::<i64>()
            == 0
            && !stats.is_empty()
        {
            assert_eq!(stats.iter().map(|s| s.dead).sum::<i64>(), 1, "{stats:?}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not drained: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    running.await.unwrap().unwrap();
}

fn expected() -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = (0..25)
        .filter(|&i| i != 7)
        .map(|i| (format!("o-{i}"), 100 + i))
        .collect();
    rows.sort();
    rows
}

#[sqlx::test(migrations = false)]
async fn one_generic_handler_writes_and_reads_on_postgres(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await
        .unwrap();
    let store = PgStore::new(pool.clone());
    store.migrate().await.unwrap();
    sqlx::query(CREATE).execute(&pool).await.unwrap();
    book_on(store).await;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select order_id, cents from booked order by order_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, expected());
}

#[tokio::test]
async fn one_generic_handler_writes_and_reads_on_sqlite() {
    let db = conveyor::testing::sqlite().await.unwrap();
    let store: SqliteStore = db.clone();
    sqlx::query(CREATE).execute(store.pool()).await.unwrap();
    book_on(store.clone()).await;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select order_id, cents from booked order by order_id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(rows, expected());
}

/// On SQLite a read through the pool (`SqlStore::fetch_optional`, what `ctx.read_*` use)
/// does not wait for the write lock: it answers while another transaction holds it.
#[tokio::test]
async fn pool_reads_do_not_wait_for_the_sqlite_write_lock() {
    let db = conveyor::testing::sqlite().await.unwrap();
    let store: &SqliteStore = &db;
    sqlx::query(CREATE).execute(store.pool()).await.unwrap();
    let mut writer = store.begin().await.unwrap();
    write_one(&mut writer).await;
    let read = tokio::time::timeout(
        Duration::from_secs(2),
        store.fetch_optional::<(i64,)>(sql("select count(*) from booked")),
    )
    .await
    .expect("a read beside an open write transaction answers at once")
    .unwrap();
    assert_eq!(read, Some((0,)), "the uncommitted write is not seen");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), store.begin())
            .await
            .is_err(),
        "a second writer does wait"
    );
    writer.commit().await.unwrap();
    let (n,): (i64,) = store
        .fetch_optional(sql("select count(*) from booked"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
}

async fn write_one(tx: &mut conveyor::SqliteTx) {
    SqliteStore::execute_in(
        tx,
        sql("insert into booked (order_id, cents) values ($1, $2)")
            .bind("o-1")
            .bind(1_i64),
    )
    .await
    .unwrap();
}
