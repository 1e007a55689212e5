//! Drive a running `conveyor serve` with concurrent bulk requests and measure ingestion:
//! accepted events/s, API latency, and how long until `events_raw` and the rollups have
//! caught up (end-to-end events/s).
//!
//! ```sh
//! scripts/run.sh &                      # the server, tenant `demo` under key `dev-key`
//! cargo run --release -p conveyor-server --example ingest_load -- \
//!     --requests 2000 --events 100 --clients 16
//! ```
//! It reads the server's database to see when the pipeline has caught up: the embedded
//! SQLite file `run.sh` uses by default, or `--database-url postgres://…` (a flag only, not
//! `DATABASE_URL`, which cargo sets for every `cargo run` in this workspace).
//! This is a stopgap until `conveyor bench ingest` exists; it prints one JSON line too.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use serde_json::json;

const SOURCES: [&str; 3] = ["web", "ios", "android"];

/// Flags.
#[derive(Debug, Parser)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key of the server.
    #[arg(long, default_value = "dev-key")]
    key: String,
    /// The key's tenant namespace (to count its rows).
    #[arg(long, default_value = "demo")]
    namespace: String,
    /// The server's database, to see when the pipeline has caught up: a `postgres://` or
    /// `sqlite://` URL. Defaults to the embedded database in `--data-dir`.
    #[arg(long, default_value = "")]
    database_url: String,
    /// The server's `--data-dir`, when it runs on the embedded database. Defaults to
    /// `./conveyor-data`.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Requests to send.
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

/// The server's database, read-only here.
enum Db {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Db {
    /// The database the server's own flags would name.
    async fn open(url: &str, data_dir: Option<&std::path::Path>) -> anyhow::Result<Db> {
        use conveyor_server::database::Location;
        Ok(match Location::from_flags(url, data_dir)? {
            Location::Postgres(url) => Db::Postgres(
                sqlx::PgPool::connect(&url)
                    .await
                    .context("--database-url")?,
            ),
            Location::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .busy_timeout(Duration::from_secs(5));
                Db::Sqlite(
                    sqlx::SqlitePool::connect_with(options)
                        .await
                        .with_context(|| {
                            format!("opening {} (is the server running?)", path.display())
                        })?,
                )
            }
        })
    }

    /// The count `sql` selects for `namespace` (bound as `$1`, which both dialects accept).
    async fn count(&self, sql: &'static str, namespace: &str) -> sqlx::Result<i64> {
        match self {
            Db::Postgres(pool) => {
                sqlx::query_scalar(sql)
                    .bind(namespace)
                    .fetch_one(pool)
                    .await
            }
            Db::Sqlite(pool) => {
                sqlx::query_scalar(sql)
                    .bind(namespace)
                    .fetch_one(pool)
                    .await
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = Db::open(&args.database_url, args.data_dir.as_deref()).await?;
    let count = |sql: &'static str| db.count(sql, &args.namespace);
    let raw_before = count("select count(*) from events_raw where namespace = $1").await?;
    let rollup_before = count(
        "select cast(coalesce(sum(count), 0) as bigint) from analytics_daily_event_counts where namespace = $1",
    )
    .await?;

    let client = reqwest::Client::new();
    let bulk = format!("{}/v1/events/bulk", args.url);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let (client, bulk, key, events) =
            (client.clone(), bulk.clone(), args.key.clone(), args.events);
        let mine: Vec<usize> = (c..args.requests).step_by(args.clients).collect();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(mine.len());
            for r in mine {
                let now = chrono::Utc::now().to_rfc3339();
                let body = json!({"events": (0..events).map(|i| json!({
                    "event_id": uuid::Uuid::new_v4(),
                    "event_type": format!("type_{}", i % 10),
                    "actor_id": format!("actor_{}", (r * events + i) % 5000),
                    "source": SOURCES[i % 3],
                    "timestamp": now,
                    "attributes": {"page": format!("/p/{}", i % 50), "n": i}
                })).collect::<Vec<_>>()});
                let sent = Instant::now();
                let response = client
                    .post(&bulk)
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(response.status() == 202, "status {}", response.status());
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let accept_secs = start.elapsed().as_secs_f64();
    let total = (args.requests * args.events) as i64;

    let caught_up =
        |raw: i64, rollup: i64| raw - raw_before >= total && rollup - rollup_before >= total;
    loop {
        let raw = count("select count(*) from events_raw where namespace = $1").await?;
        let rollup = count(
            "select cast(coalesce(sum(count), 0) as bigint) from analytics_daily_event_counts where namespace = $1",
        )
        .await?;
        if caught_up(raw, rollup) {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "not caught up after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e2e_secs = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    let report = json!({
        "workload": "ingest", "events": total, "requests": args.requests,
        "events_per_request": args.events, "clients": args.clients,
        "accepted_events_per_s": (total as f64 / accept_secs).round(),
        "end_to_end_events_per_s": (total as f64 / e2e_secs).round(),
        "api_p50_ms": pct(0.50), "api_p99_ms": pct(0.99),
        "accept_secs": accept_secs, "end_to_end_secs": e2e_secs,
    });
    println!(
        "{total} events in {} requests of {} from {} clients: accepted {:.0}/s, end to end {:.0}/s; API p50 {:.1} ms, p99 {:.1} ms",
        args.requests, args.events, args.clients, total as f64 / accept_secs, total as f64 / e2e_secs, pct(0.5), pct(0.99)
    );
    println!("{report}");
    Ok(())
}
