//! A handler written against `conveyor::prelude` and the re-exported `async_trait` alone
//! (no direct `async-trait` import), run once on SQLite.

use conveyor::prelude::*;

#[derive(serde::Serialize, serde::Deserialize, conveyor::garde::Validate)]
struct Ping {
    #[garde(range(min = 1))]
    n: i64,
}

impl Event for Ping {
    const NAME: &'static str = "ping";
}

struct Count;

#[async_trait]
impl<S: SqlStore> EventHandler<S> for Count {
    type Event = Ping;

    async fn handle(
        &self,
        batch: conveyor::Batch<Ping>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            ctx.execute(sql("insert into pings (n) values ($1)").bind(item.payload.n))
                .await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_prelude_handler_runs() {
    let db = conveyor::testing::sqlite().await.unwrap();
    let store: SqliteStore = db.clone();
    conveyor::sqlx::query("create table pings (n integer not null)")
        .execute(store.pool())
        .await
        .unwrap();
    store.publish(Ping { n: 7 }).await.unwrap();
    let drained = conveyor::testing::drain(
        WorkerPool::builder(store.clone()).register(Count),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!((drained.delivered, drained.dead), (1, 0));
    let (n,): (i64,) = store
        .fetch_optional(sql("select count(*) from pings"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
}
