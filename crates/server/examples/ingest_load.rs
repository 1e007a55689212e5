//! Drive a running `conveyor serve` with concurrent bulk requests and measure ingestion:
//! accepted events/s, API latency, and how long until `events_raw` and the rollups have
//! caught up (end-to-end events/s).
//!
//! ```sh
//! scripts/run.sh &                      # the server, tenant `demo` under key `dev-key`
//! cargo run --release -p conveyor-server --example ingest_load -- \
//!     --requests 2000 --events 100 --clients 16
//! ```
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
    /// The server's database, to see when the pipeline has caught up.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://root@127.0.0.1:5432/conveyor"
    )]
    database_url: String,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = sqlx::PgPool::connect(&args.database_url)
        .await
        .context("--database-url")?;
    let count = |sql: &'static str| {
        let (db, ns) = (db.clone(), args.namespace.clone());
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(ns)
                .fetch_one(&db)
                .await
        }
    };
    let raw_before = count("select count(*) from events_raw where namespace = $1").await?;
    let rollup_before = count(
        "select coalesce(sum(count), 0)::bigint from analytics_daily_event_counts where namespace = $1",
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
            "select coalesce(sum(count), 0)::bigint from analytics_daily_event_counts where namespace = $1",
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
