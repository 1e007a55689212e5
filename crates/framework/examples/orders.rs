//! Orders end to end, one program for both backends: publish 10,000 orders for 20 tenants,
//! record each in a table inside the batch's transaction, emit a receipt per order, and
//! print what happened. The handlers are written once, over `SqlStore`.
//!
//! Run it with `scripts/example.sh` (Postgres; it creates the database), with
//! `DATABASE_URL` naming an empty Postgres database, or with no `DATABASE_URL` (or a
//! `sqlite://PATH` one) on an SQLite file: `cargo run -p conveyor --example orders`. Its
//! tests (`cargo test -p conveyor --example orders`) run it on both backends.

use std::time::{Duration, Instant};

use conveyor::{
    sql, Batch, Context, EventHandler, HandlerError, HandlerOptions, Message, PgStore, SqlStore,
    SqliteStore, Store, WorkerPool,
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
impl<S: SqlStore> EventHandler<S> for BookOrders {
    type Event = OrderPlaced;
    const BATCH_SIZE: usize = 100;

    async fn handle(
        &self,
        batch: Batch<OrderPlaced>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            let order = &item.payload;
            ctx.execute(
                sql(
                    "insert into orders_booked (order_id, tenant, cents) values ($1, $2, $3)
                     on conflict (order_id) do nothing",
                )
                .bind(order.order_id.as_str())
                .bind(order.tenant.as_str())
                .bind(order.cents),
            )
            .await?;
            let receipt = SendReceipt {
                order_id: order.order_id.clone(),
            };
            ctx.emit_for(item.id, receipt)?;
        }
        Ok(())
    }
}

/// "Sends" receipts; one in fifty fails the first time and is retried after a second.
struct Mailer;

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for Mailer {
    type Event = SendReceipt;
    const BATCH_SIZE: usize = 100;

    async fn handle(
        &self,
        batch: Batch<SendReceipt>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            if item.id.0 % 50 == 0 && item.attempt == 1 {
                ctx.retry_after(item.id, Duration::from_secs(1), "smtp: 421 try again");
            }
        }
        Ok(())
    }
}

/// What a run did (the tests check it).
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
struct Summary {
    booked: i64,
    delivered: i64,
    dead: i64,
}

/// Publish `orders` orders, run the pool until none is pending or in flight (two minutes at
/// most), and count what happened.
async fn run<S: SqlStore>(store: S, orders: i64) -> anyhow::Result<Summary> {
    let mut tx = store.begin().await?;
    let create = "create table if not exists orders_booked
                  (order_id text primary key, tenant text not null, cents bigint not null)";
    S::execute_in(&mut tx, sql(create)).await?;
    store.commit(tx).await?;

    let orders = (0..orders).map(|n| {
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

    let (booked,): (i64,) = store
        .fetch_optional(sql("select count(*) from orders_booked"))
        .await?
        .unwrap_or_default();
    println!(
        "booked {booked} orders and sent their receipts in {:?}",
        started.elapsed()
    );
    let stats = store.stats().await?;
    for s in &stats {
        println!(
            "{:<14} delivered {:>6}  pending {:>3}  dead {:>3}",
            s.queue.to_string(),
            s.delivered,
            s.pending,
            s.dead
        );
    }
    Ok(Summary {
        booked,
        delivered: stats.iter().map(|s| s.delivered).sum(),
        dead: stats.iter().map(|s| s.dead).sum(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "conveyor=info".into()),
        )
        .init();
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PgStore::connect(&url).await?;
        store.migrate().await?;
        run(store, 10_000).await?;
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or("orders-example.db");
        run(SqliteStore::open(path).await?, 10_000).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every order booked once and every receipt delivered (after its retry), on each backend.
    fn check(summary: &Summary, orders: i64) {
        assert_eq!(summary.booked, orders, "{summary:?}");
        assert_eq!(summary.delivered, 2 * orders, "{summary:?}");
        assert_eq!(summary.dead, 0, "{summary:?}");
    }

    #[sqlx::test(migrations = false)]
    async fn runs_on_postgres(pool: sqlx::PgPool) {
        let store = PgStore::new(pool);
        store.migrate().await.unwrap();
        check(&run(store, 500).await.unwrap(), 500);
    }

    #[tokio::test]
    async fn runs_on_sqlite() {
        let db = conveyor::testing::sqlite().await.unwrap();
        check(&run(db.clone(), 500).await.unwrap(), 500);
    }
}
