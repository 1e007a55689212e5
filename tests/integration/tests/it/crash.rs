//! The real `conveyor serve` process killed with SIGKILL in the middle of ingesting, on
//! Postgres and on the embedded SQLite database.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conveyor_integration::database_url;
use conveyor_integration::pipeline::{bulk, event, temp_dir, ServerProcess};
use conveyor_integration::TestDb;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_conveyor-it-server");
const KEY: &str = "crash-key";
const KEYS: &str = "crash-key=tenant-crash";

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
    let dir = temp_dir("conveyor-crash");
    sigkill_mid_ingest(&dir, Some(&url), Some(&url), &url).await;
    std::fs::remove_dir_all(dir).ok();
}

/// The same on SQLite: started with no `DATABASE_URL` (the default file in its working
/// directory), restarted with a `sqlite://` URL naming that file.
#[tokio::test]
async fn acknowledged_events_survive_a_sigkill_mid_ingest_on_sqlite() {
    let dir = temp_dir("conveyor-crash-sqlite");
    let url = format!(
        "sqlite://{}",
        dir.join("conveyor-data/conveyor.db").display()
    );
    sigkill_mid_ingest(&dir, None, Some(&url), &url).await;
    std::fs::remove_dir_all(dir).ok();
}

/// Start the server in `dir` on `first`, post from 4 clients, SIGKILL it mid-ingest, restart
/// it on `restart`, and check every acknowledged event through `test_url`.
async fn sigkill_mid_ingest(
    dir: &Path,
    first: Option<&str>,
    restart: Option<&str>,
    test_url: &str,
) {
    let server = ServerProcess::start(BIN, first, KEYS, dir).await;
    let db = TestDb::connect(test_url).await;
    let (acked, clients) = spawn_clients(server.addr, 4);
    // kill while requests are in flight and the workers are busy
    let start = Instant::now();
    while acked.lock().unwrap().len() < 3_000 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed_before_kill = db.scalar("select count(*) from events_raw").await;
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

    let restarted = ServerProcess::start(BIN, restart, KEYS, dir).await;
    restarted
        .wait_for_settled(&db, Duration::from_secs(120))
        .await;

    let wanted: std::collections::HashSet<Uuid> = acked.iter().copied().collect();
    let stored = db
        .raw_event_ids("tenant-crash")
        .await
        .into_iter()
        .filter(|id| wanted.contains(id))
        .count();
    assert_eq!(
        stored,
        acked.len(),
        "an acknowledged event is missing or doubled"
    );
    let (rows, distinct) = db.raw_counts().await;
    assert_eq!(rows, distinct, "an event is stored twice");
    db.assert_rollups_match_raw().await;
    eprintln!(
        "crash test: {} acknowledged, {processed_before_kill} stored before the kill, {rows} after restart",
        acked.len()
    );
    db.close().await;
}
