//! No-op throughput on each backend: prefill N events with bulk publishes, then drain them
//! with a pool of handlers that do nothing, and print events/s for both phases.
//!
//! ```text
//! cargo run --release -p conveyor --example noop_throughput -- [sqlite|postgres] [events] [concurrency]
//! ```
//!
//! Postgres uses a fresh database (created on `DATABASE_URL`'s server, default
//! `postgres://root@127.0.0.1:5432/postgres`, and dropped afterwards); SQLite a temp file.
//! `conveyor bench` will replace this example.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conveyor::{
    Batch, Context, EventHandler, HandlerError, HandlerOptions, PgStore, SqliteStore, Store,
    WorkerPool,
};
use sqlx::postgres::PgPoolOptions;

/// The no-op payload.
#[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
struct Noop {
    #[garde(skip)]
    n: u64,
}

impl conveyor::Event for Noop {
    const NAME: &'static str = "bench.noop";
}

/// Counts what it is handed and does nothing else.
struct Count(Arc<AtomicU64>);

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for Count {
    type Event = Noop;
    const BATCH_SIZE: usize = 100;

    async fn handle(&self, batch: Batch<Noop>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".into());
    let events: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(4), |a| a.parse())?;
    match backend.as_str() {
        "sqlite" => {
            let path =
                std::env::temp_dir().join(format!("conveyor-bench-{}.db", std::process::id()));
            let store = SqliteStore::open(&path).await?;
            let result = run(store, "sqlite", events, concurrency).await;
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            result
        }
        "postgres" => {
            let url = std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            let name = format!("conveyor_bench_{}", std::process::id());
            sqlx::query(&format!("create database {name}"))
                .execute(&admin)
                .await?;
            let db_url = format!(
                "{}/{name}",
                url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base)
            );
            let pool = PgPoolOptions::new()
                .max_connections(u32::try_from(concurrency)? + 6)
                .connect(&db_url)
                .await?;
            conveyor::MIGRATOR.run(&pool).await?;
            let result = run(PgStore::new(pool.clone()), "postgres", events, concurrency).await;
            pool.close().await;
            sqlx::query(&format!("drop database {name}"))
                .execute(&admin)
                .await?;
            result
        }
        other => anyhow::bail!("backend must be sqlite or postgres, got {other:?}"),
    }
}

async fn run<S: Store>(
    store: S,
    backend: &str,
    events: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut next = 0;
    while next < events {
        let chunk = (next..events.min(next + 5_000)).map(|n| Noop { n });
        store.publish_batch(chunk).await?;
        next = events.min(next + 5_000);
    }
    let publish = started.elapsed();

    let handled = Arc::new(AtomicU64::new(0));
    let pool = WorkerPool::builder(store)
        .register_with(
            Count(handled.clone()),
            HandlerOptions::default().concurrency(concurrency),
        )
        .build()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(pool.run(stop.clone().cancelled_owned()));
    while handled.load(Ordering::Relaxed) < events {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drain = started.elapsed();
    stop.cancel();
    running.await??;

    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!(
        "{backend}: {events} events, batch 100, concurrency {concurrency}: publish {:.0}/s ({:.2} s), drain {:.0}/s ({:.2} s)",
        rate(publish),
        publish.as_secs_f64(),
        rate(drain),
        drain.as_secs_f64()
    );
    Ok(())
}
