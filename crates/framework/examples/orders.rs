//! Orders end to end: publish 10,000 orders for 20 tenants, record each in a table inside
//! the batch's transaction, emit a receipt per order, and print what happened.
//!
//! Run it with `scripts/example.sh` (it creates the database), or point `DATABASE_URL` at
//! an empty database and `cargo run -p conveyor --example orders`.

use std::time::{Duration, Instant};

use conveyor::{
    Batch, Context, EventHandler, HandlerError, HandlerOptions, Message, PgStore, Store, WorkerPool,
};

/// An order was placed.
#[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
struct OrderPlaced {
    #[garde(length(min = 1))]
    order_id: String,
    #[garde(length(min = 1))]
    tenant: String,
    #[garde(range(min = 1))]
    cents: i64,
}

impl conveyor::Event for OrderPlaced {
    const NAME: &'static str = "order_placed";
}

/// A receipt should be sent for an order.
#[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
struct SendReceipt {
    #[garde(length(min = 1))]
    order_id: String,
}

impl conveyor::Event for SendReceipt {
    const NAME: &'static str = "send_receipt";
}

/// Books each order into `orders_booked` and emits a receipt, all in the batch's
/// transaction: a crash or failure never books an order without its receipt or twice.
struct BookOrders;

#[async_trait::async_trait]
impl EventHandler for BookOrders {
    type Event = OrderPlaced;
    const BATCH_SIZE: usize = 100;

    async fn handle(
        &self,
        batch: Batch<OrderPlaced>,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let ids: Vec<&str> = batch.iter().map(|i| i.payload.order_id.as_str()).collect();
        let tenants: Vec<&str> = batch.iter().map(|i| i.payload.tenant.as_str()).collect();
        let cents: Vec<i64> = batch.iter().map(|i| i.payload.cents).collect();
        sqlx::query(
            "insert into orders_booked (order_id, tenant, cents)
             select * from unnest($1::text[], $2::text[], $3::bigint[])
             on conflict (order_id) do nothing",
        )
        .bind(&ids)
        .bind(&tenants)
        .bind(&cents)
        .execute(ctx.db().await?)
        .await?;
        for item in &batch {
            let receipt = SendReceipt {
                order_id: item.payload.order_id.clone(),
            };
            ctx.emit_for(item.id, receipt)?;
        }
        Ok(())
    }
}

/// "Sends" receipts; one in fifty fails the first time and is retried after a second.
struct Mailer;

#[async_trait::async_trait]
impl EventHandler for Mailer {
    type Event = SendReceipt;
    const BATCH_SIZE: usize = 100;

    async fn handle(
        &self,
        batch: Batch<SendReceipt>,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            if item.id.0 % 50 == 0 && item.attempt == 1 {
                ctx.retry_after(item.id, Duration::from_secs(1), "smtp: 421 try again");
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "conveyor=info".into()),
        )
        .init();
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("DATABASE_URL must name an empty database"))?;
    let store = PgStore::connect(&url).await?;
    store.migrate().await?;
    sqlx::query(
        "create table if not exists orders_booked
         (order_id text primary key, tenant text not null, cents bigint not null)",
    )
    .execute(store.pool())
    .await?;

    let orders = (0..10_000).map(|n| {
        let tenant = format!("tenant-{:02}", n % 20);
        Message::new(OrderPlaced {
            order_id: format!("o-{n}"),
            tenant: tenant.clone(),
            cents: 100 + n,
        })
        .fairness_key(tenant)
        .idempotency_key(format!("order-{n}"))
    });
    let started = Instant::now();
    let report = store.publish_batch(orders).await?;
    println!(
        "published {} orders in {:?}",
        report.inserted().count(),
        started.elapsed()
    );

    let pool = WorkerPool::builder(store.clone())
        .register_with(BookOrders, HandlerOptions::default().concurrency(4))
        .register_with(Mailer, HandlerOptions::default().concurrency(2))
        .build()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(pool.run(stop.clone().cancelled_owned()));

    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = store.stats().await?;
        let open: i64 = stats.iter().map(|s| s.pending + s.in_flight).sum();
        if open == 0 || started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    stop.cancel();
    running.await??;

    let booked: i64 = sqlx::query_scalar("select count(*) from orders_booked")
        .fetch_one(store.pool())
        .await?;
    println!(
        "booked {booked} orders and sent their receipts in {:?}",
        started.elapsed()
    );
    for s in store.stats().await? {
        println!(
            "{:<14} delivered {:>6}  pending {:>3}  dead {:>3}",
            s.queue.to_string(),
            s.delivered,
            s.pending,
            s.dead
        );
    }
    Ok(())
}
