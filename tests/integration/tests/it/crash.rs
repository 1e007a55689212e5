//! The real `conveyor serve` process killed with SIGKILL in the middle of ingesting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conveyor_integration::database_url;
use conveyor_integration::pipeline::{
    assert_rollups_match_raw, bulk, event, raw_counts, temp_dir, wait_for_quiescence, ServerProcess,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_conveyor-it-server");
const KEY: &str = "crash-key";

/// Post 100-event requests from `clients` tasks until a request fails (the server died);
/// returns the ids of every event that got a 202.
fn spawn_clients(
    addr: std::net::SocketAddr,
    clients: usize,
) -> (Arc<Mutex<Vec<Uuid>>>, Vec<tokio::task::JoinHandle<()>>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let tasks = (0..clients)
        .map(|c| {
            let acked = acked.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for r in 0.. {
                    let events: Vec<_> = (0..100)
                        .map(|i| event(c * 1_000_000 + r * 100 + i))
                        .collect();
                    let ids: Vec<Uuid> = events
                        .iter()
                        .map(|e| e["event_id"].as_str().unwrap().parse().unwrap())
                        .collect();
                    let sent = client
                        .post(format!("http://{addr}/v1/events/bulk"))
                        .bearer_auth(KEY)
                        .json(&bulk(&events))
                        .send()
                        .await;
                    match sent {
                        Ok(resp) if resp.status() == 202 => acked.lock().unwrap().extend(ids),
                        Ok(resp) => panic!("unexpected status {}", resp.status()),
                        // connection refused or reset: the server is gone
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    (acked, tasks)
}

/// Every event acknowledged with 202 before a SIGKILL is stored exactly once after a
/// restart, and the rollups equal the GROUP BY over `events_raw`.
#[sqlx::test(migrations = false)]
async fn acknowledged_events_survive_a_sigkill_mid_ingest(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let url = database_url(&opts);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .unwrap();
    let spool = temp_dir("conveyor-crash");
    let keys = format!("{KEY}=tenant-crash");

    let server = ServerProcess::start(BIN, &url, &keys, &spool).await;
    let (acked, clients) = spawn_clients(server.addr, 4);
    // kill while requests are in flight and the workers are busy
    let start = Instant::now();
    while acked.lock().unwrap().len() < 3_000 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed_before_kill: i64 = sqlx::query_scalar("select count(*) from events_raw")
        .fetch_one(&pool)
        .await
        .unwrap();
    server.kill();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 1_000,
        "only {} events acknowledged before the kill",
        acked.len()
    );

    let _restarted = ServerProcess::start(BIN, &url, &keys, &spool).await;
    wait_for_quiescence(&pool, Duration::from_secs(120)).await;

    let stored: i64 = sqlx::query_scalar(
        "select count(*) from events_raw where namespace = 'tenant-crash' and event_id = any($1)",
    )
    .bind(&acked)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        stored,
        acked.len() as i64,
        "an acknowledged event is missing or doubled"
    );
    let (rows, distinct) = raw_counts(&pool).await;
    assert_eq!(rows, distinct, "an event is stored twice");
    assert_rollups_match_raw(&pool).await;
    eprintln!(
        "crash test: {} acknowledged, {processed_before_kill} stored before the kill, {rows} after restart",
        acked.len()
    );
    std::fs::remove_dir_all(spool).ok();
}
