//! Helpers for the pipeline tests: event bodies, waiting for the pipeline to drain, and the
//! real server as a child process (the exactness checks are [`TestDb`]'s).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::TestDb;

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

/// Wait until the outbox has nothing pending or claimed, twice in a row 200 ms apart.
///
/// # Panics
/// When `timeout` passes first.
pub async fn wait_for_quiescence(db: &TestDb, timeout: Duration) {
    let start = Instant::now();
    let mut settled_once = false;
    loop {
        let n = db.unsettled().await;
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

/// The operator key every [`ServerProcess`] is started with.
const OPERATOR_KEY: &str = "it-operator-key";

/// The real `conveyor serve`, as a child process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Start `bin serve` in the working directory `dir` with API keys `keys`
    /// (`KEY=NAMESPACE`), its ingestion log in `dir/log`, and wait until `/healthz` answers.
    /// `database_url` `None` starts it with no `DATABASE_URL` at all: the embedded database
    /// in `dir/conveyor-data`.
    ///
    /// # Panics
    /// When the process cannot start or does not become healthy within 60 s.
    pub async fn start(
        bin: &str,
        database_url: Option<&str>,
        keys: &str,
        dir: &std::path::Path,
    ) -> ServerProcess {
        let addr = free_port();
        let mut command = Command::new(bin);
        match database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        let child = command
            .arg("serve")
            .current_dir(dir)
            .env_remove("CONVEYOR_DATA_DIR")
            .env("CONVEYOR_LISTEN", addr.to_string())
            .env("CONVEYOR_API_KEYS", keys)
            .env("CONVEYOR_OPERATOR_KEYS", OPERATOR_KEY)
            .env("CONVEYOR_SPOOL_DIR", dir.join("spool"))
            .env("CONVEYOR_LOG_DIR", dir.join("log"))
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

    /// Wait until the server's ingestion log holds nothing unpublished (its
    /// `/healthz/detailed` says `unpublished_events: 0`), then until the outbox is quiet
    /// ([`wait_for_quiescence`]): every acknowledged event is stored and indexed.
    ///
    /// # Panics
    /// When either does not happen within `timeout`.
    pub async fn wait_for_settled(&self, db: &TestDb, timeout: Duration) {
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            let unpublished = match client
                .get(format!("http://{}/healthz/detailed", self.addr))
                .bearer_auth(OPERATOR_KEY)
                .send()
                .await
            {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|body| body["ingest_log"]["unpublished_events"].as_u64()),
                Err(_) => None,
            };
            if unpublished == Some(0) {
                break;
            }
            assert!(
                start.elapsed() < timeout,
                "the ingestion log still holds {unpublished:?} unpublished events after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wait_for_quiescence(db, timeout.saturating_sub(start.elapsed())).await;
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
