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
    let path = std::env::temp_dir().join(format!(
        "conveyor-prelude-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    let store = SqliteStore::open(&path).await.unwrap();
    conveyor::sqlx::query("create table pings (n integer not null)")
        .execute(store.pool())
        .await
        .unwrap();
    store.publish(Ping { n: 7 }).await.unwrap();
    let pool = WorkerPool::builder(store.clone())
        .register(Count)
        .build()
        .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(pool.run(token.clone().cancelled_owned()));
    let start = std::time::Instant::now();
    loop {
        let (n,): (i64,) = store
            .fetch_optional(sql("select count(*) from pings"))
            .await
            .unwrap()
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "not handled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    token.cancel();
    running.await.unwrap().unwrap();
    std::fs::remove_file(&path).ok();
}
