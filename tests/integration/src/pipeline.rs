//! Helpers for the pipeline tests: event bodies, waiting for the pipeline to drain, the
//! exactness check of the rollups, and the real server as a child process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// Event `i` of a run: a fresh id, one of 5 types, 3 sources and 50 actors, spread over
/// today and the two days before (so rollups span several days and partitions).
pub fn event(i: usize) -> Value {
    let ts = chrono::Utc::now() - chrono::Duration::hours(((i % 3) * 24) as i64);
    let source = ["web", "ios", "android"][i % 3];
    json!({
        "event_id": Uuid::new_v4(),
        "event_type": format!("type_{}", i % 5),
        "actor_id": format!("actor_{}", i % 50),
        "source": source,
        "timestamp": ts.to_rfc3339(),
        "attributes": {"n": i, "page": format!("/page/{}", i % 7)}
    })
}

/// The bulk request body for `events`.
pub fn bulk(events: &[Value]) -> Value {
    json!({ "events": events })
}

/// Outbox rows not yet settled (pending or claimed), in every namespace.
pub async fn unsettled(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from conveyor_events where status in ('pending', 'claimed')",
    )
    .fetch_one(pool)
    .await
    .expect("counting unsettled outbox rows")
}

/// Wait until the outbox has nothing pending or claimed, twice in a row 200 ms apart.
///
/// # Panics
/// When `timeout` passes first.
pub async fn wait_for_quiescence(pool: &PgPool, timeout: Duration) {
    let start = Instant::now();
    let mut settled_once = false;
    loop {
        let n = unsettled(pool).await;
        if n == 0 && settled_once {
            return;
        }
        settled_once = n == 0;
        assert!(
            start.elapsed() < timeout,
            "pipeline still has {n} unsettled outbox rows after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Assert the invariant: the rollups equal a GROUP BY over `events_raw`, row for row, and
/// the unique actors per day equal the distinct actors of `events_raw`.
///
/// # Panics
/// When they differ.
pub async fn assert_rollups_match_raw(pool: &PgPool) {
    let rollup: Vec<(String, chrono::NaiveDate, String, String, i64)> = sqlx::query_as(
        "select namespace, day, event_type, source, count from analytics_daily_event_counts
         order by 1, 2, 3, 4",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let raw: Vec<(String, chrono::NaiveDate, String, String, i64)> = sqlx::query_as(
        "select namespace, (ts at time zone 'UTC')::date, event_type, source, count(*)
         from events_raw group by 1, 2, 3, 4 order by 1, 2, 3, 4",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        rollup, raw,
        "rollups differ from the GROUP BY over events_raw"
    );

    let actors: Vec<(String, chrono::NaiveDate, i64)> = sqlx::query_as(
        "select namespace, day, count(*) from analytics_daily_actors group by 1, 2 order by 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let raw_actors: Vec<(String, chrono::NaiveDate, i64)> = sqlx::query_as(
        "select namespace, (ts at time zone 'UTC')::date, count(distinct actor_id)
         from events_raw group by 1, 2 order by 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(actors, raw_actors, "unique actors differ from events_raw");
}

/// The number of rows in `events_raw` and how many distinct event ids they hold.
pub async fn raw_counts(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as("select count(*), count(distinct (namespace, event_id)) from events_raw")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The real `conveyor serve`, as a child process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Start `bin serve` against `database_url` with API key `key` for namespace `namespace`,
    /// spooling into `spool_dir`, and wait until `/healthz` answers.
    ///
    /// # Panics
    /// When the process cannot start or does not become healthy within 60 s.
    pub async fn start(
        bin: &str,
        database_url: &str,
        key_for_namespace: &str,
        spool_dir: &std::path::Path,
    ) -> ServerProcess {
        let addr = free_port();
        let child = Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("CONVEYOR_LISTEN", addr.to_string())
            .env("CONVEYOR_API_KEYS", key_for_namespace)
            .env("CONVEYOR_SPOOL_DIR", spool_dir)
            .env("CONVEYOR_BACKEND_RETRY_BASE_MS", "100")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let mut server = ServerProcess { child, addr };
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await {
                if r.status().is_success() {
                    return server;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited before becoming healthy: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "server not healthy after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown hooks, no flushing, like a crash.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping the killed server");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A temporary directory, removed by the caller (best effort).
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// A loopback port nothing listens on right now.
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    listener.local_addr().expect("local addr")
}
