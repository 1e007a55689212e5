//! Helpers for the end-to-end tests: run the server's real command line against the fresh
//! database `#[sqlx::test]` creates for each test, or start the real server in-process on a
//! free port, on Postgres ([`spawn_app`]) or on a fresh SQLite file ([`spawn_sqlite_app`]),
//! and drive its HTTP API through a [`TestApp`].

mod app;
pub mod db;
pub mod pipeline;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use conveyor::PgStore;
use conveyor_handlers::PipelineStore;
use conveyor_server::config::Cli;
use conveyor_server::{LogConfig, Server, Settings};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use db::TestDb;

/// The tenant namespace of [`TestApp::key`].
pub const TENANT_A: &str = "tenant-a";
/// The tenant namespace of [`TestApp::other_key`].
pub const TENANT_B: &str = "tenant-b";

/// The URL of the database behind `opts`.
pub fn database_url(opts: &PgConnectOptions) -> String {
    opts.to_url_lossy().to_string()
}

/// Parse `args` exactly as the `conveyor` binary does (flags and env fallbacks) and run
/// them; returns the error text on failure.
pub async fn conveyor(args: &[&str]) -> Result<(), String> {
    let cli = Cli::try_parse_from(std::iter::once("conveyor").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    conveyor_server::run(cli)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// A payload the tests publish.
#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Ping {
    /// Any number.
    #[garde(skip)]
    pub n: u32,
}

impl conveyor::Event for Ping {
    const NAME: &'static str = "it.ping";
}

/// A fresh SQLite database file name under the temp directory (not created).
pub fn temp_database() -> PathBuf {
    std::env::temp_dir().join(format!("conveyor-it-{}.db", uuid::Uuid::new_v4().simple()))
}

/// Remove a SQLite database file and its WAL companions (best effort).
pub fn remove_database(file: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

/// The real server, running in this process on a free port against a test database.
#[derive(Debug)]
pub struct TestApp {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// `http://{addr}`.
    pub base: String,
    /// A client for the API.
    pub client: reqwest::Client,
    /// The test's own pool on the server's database (the server's pool is separate).
    pub db: TestDb,
    /// An API key of [`TENANT_A`].
    pub key: String,
    /// An API key of [`TENANT_B`].
    pub other_key: String,
    /// An operator key of the server (for `/healthz/detailed`).
    pub operator_key: String,
    /// The server's ingestion log directory (removed by [`shutdown`](Self::shutdown)).
    pub log_dir: PathBuf,
    token: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    server_db: TestDb,
    /// The directory of the default log and legacy spool, removed by [`shutdown`](Self::shutdown)
    /// (a log a test puts elsewhere outlives the app).
    scratch: PathBuf,
    /// The SQLite file, removed by [`shutdown`](Self::shutdown).
    sqlite_file: Option<PathBuf>,
}

/// Start the real server on `127.0.0.1:0` against the test database: its own pool of 30
/// connections (the test's pool comes from `pool_opts`), a fresh ingestion log, keys for
/// [`TENANT_A`] and [`TENANT_B`], index backends that retry fast and give up after one retry.
/// `tweak` adjusts the settings before the server binds.
///
/// # Panics
/// When the database cannot be reached or the server cannot start.
pub async fn spawn_app(
    pool_opts: PgPoolOptions,
    connect_opts: PgConnectOptions,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let server_opts = connect_opts.clone();
    start_on_postgres(pool_opts, connect_opts, server_opts, tweak).await
}

/// [`spawn_app`] with the server's database connections going through a
/// [`TcpProxy`](conveyor_bench::TcpProxy) (the one `conveyor bench ingest --outage-secs` uses),
/// so the test can cut the database away from the server and restore it (the test's own
/// pool connects directly).
///
/// # Panics
/// When the database cannot be reached or the server cannot start.
pub async fn spawn_app_behind_proxy(
    pool_opts: PgPoolOptions,
    connect_opts: PgConnectOptions,
    tweak: impl FnOnce(&mut Settings),
) -> (TestApp, conveyor_bench::TcpProxy) {
    let target: SocketAddr = format!("127.0.0.1:{}", connect_opts.get_port())
        .parse()
        .expect("a loopback address");
    let proxy = conveyor_bench::TcpProxy::start(target)
        .await
        .expect("starting the proxy");
    let through_proxy = connect_opts
        .clone()
        .host("127.0.0.1")
        .port(proxy.addr().port());
    let app = start_on_postgres(pool_opts, connect_opts, through_proxy, tweak).await;
    (app, proxy)
}

/// Start the server with its own pool of 30 connections on `server_opts`, the test's pool
/// of 4 from `pool_opts` on `connect_opts`.
async fn start_on_postgres(
    pool_opts: PgPoolOptions,
    connect_opts: PgConnectOptions,
    server_opts: PgConnectOptions,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    // the server's own pool, not a child of sqlx::test's master pool (capped at 20 in all)
    let server_pool = PgPoolOptions::new()
        .max_connections(30)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(server_opts)
        .await
        .expect("connecting the server's pool");
    let pool = pool_opts
        .max_connections(4)
        .connect_with(connect_opts)
        .await
        .expect("connecting the test's pool");
    let store = PgStore::new(server_pool.clone());
    start(
        store,
        TestDb::Postgres(pool),
        TestDb::Postgres(server_pool),
        None,
        tweak,
    )
    .await
}

/// [`spawn_app`] with the default test settings.
///
/// # Panics
/// As [`spawn_app`].
pub async fn spawn_default_app(
    pool_opts: PgPoolOptions,
    connect_opts: PgConnectOptions,
) -> TestApp {
    spawn_app(pool_opts, connect_opts, |_| {}).await
}

/// [`spawn_sqlite_app`] with the default test settings.
///
/// # Panics
/// As [`spawn_sqlite_app`].
pub async fn spawn_default_sqlite_app() -> TestApp {
    spawn_sqlite_app(|_| {}).await
}

/// [`spawn_app`] on SQLite: a fresh database file under the temp directory, opened as
/// `conveyor serve` opens it (WAL, `synchronous = FULL`, the serve pool size), removed by
/// [`TestApp::shutdown`].
///
/// # Panics
/// When the file cannot be created or the server cannot start.
pub async fn spawn_sqlite_app(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let file = temp_database();
    let mut app = spawn_sqlite_app_at(&file, tweak).await;
    app.sqlite_file = Some(file);
    app
}

/// [`spawn_sqlite_app`] on the database file `file` (created if missing), which outlives
/// the app: the caller removes it (see [`remove_database`]).
///
/// # Panics
/// When the file cannot be opened or the server cannot start.
pub async fn spawn_sqlite_app_at(
    file: &std::path::Path,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let store =
        conveyor_server::database::open_sqlite(file, conveyor_server::SQLITE_SERVE_CONNECTIONS)
            .await
            .expect("opening the server's SQLite database");
    let server_db = TestDb::Sqlite(store.pool().clone());
    let db = TestDb::open_sqlite(file).await;
    start(store, db, server_db, None, tweak).await
}

async fn start<S: PipelineStore>(
    store: S,
    db: TestDb,
    server_db: TestDb,
    sqlite_file: Option<PathBuf>,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let key = format!("key-a-{}", uuid::Uuid::new_v4().simple());
    let other_key = format!("key-b-{}", uuid::Uuid::new_v4().simple());
    let operator_key = format!("op-{}", uuid::Uuid::new_v4().simple());
    let dir =
        std::env::temp_dir().join(format!("conveyor-it-log-{}", uuid::Uuid::new_v4().simple()));

    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().expect("loopback address"),
        log: LogConfig {
            dir: dir.join("log"),
            ..LogConfig::default()
        },
        legacy_spool_dir: dir.join("spool"),
        operator_keys: vec![operator_key.clone()],
        cache_ttl: Duration::ZERO,
        ..Settings::default()
    };
    settings.api_keys.insert(key.clone(), TENANT_A.into());
    settings.api_keys.insert(other_key.clone(), TENANT_B.into());
    settings.pipeline.retry.max_retries = 1;
    settings.pipeline.retry.base_delay = Duration::from_millis(10);
    tweak(&mut settings);
    let log_dir = settings.log.dir.clone();

    let server = Server::bind(store, settings)
        .await
        .expect("starting the server");
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let server = tokio::spawn(server.run(token.clone().cancelled_owned()));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        db,
        key,
        other_key,
        operator_key,
        log_dir,
        scratch: dir,
        token,
        server,
        server_db,
        sqlite_file,
    }
}

/// One valid event for the bulk API.
pub fn event(event_type: &str, actor_id: &str, source: &str) -> serde_json::Value {
    serde_json::json!({
        "event_type": event_type,
        "actor_id": actor_id,
        "source": source,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "attributes": {"page": "/pricing"},
    })
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}
