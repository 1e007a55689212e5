//! The server's side of `conveyor bench`: its tracing, and the ingest workload's server in
//! this process ([`InProcessServer`], the [`InProcessIngest`] the bench command is handed).
//! The flags, the run planning and the other workloads live in [`conveyor_bench`].
//!
//! In process, the real [`Server`] runs on a fresh database, and the pipeline has caught
//! up when the server's queues have nothing pending or in flight
//! ([`Store::stats`](conveyor::Store::stats)) and both `events_raw` and the daily rollups
//! hold every accepted event (or a dead letter says some never will: the result's `checks`
//! then show what is missing).
//!
//! With an outage (`--outage-secs`, Postgres only), the server's pool reaches its database
//! through a [`TcpProxy`] the driver cuts and restores; the probe keeps a small pool of its
//! own that connects directly, so it reads the database while the server cannot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use conveyor::{PgStore, SqliteStore};
use conveyor_bench::{
    Backend, InProcessIngest, IngestParams, Progress, Report, ScratchDatabase, TcpProxy,
};
use conveyor_handlers::PipelineStore;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use sqlx::postgres::{PgConnectOptions, PgPool};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::database::{SERVE_CONNECTIONS, SQLITE_SERVE_CONNECTIONS};
use crate::serve::Server;
use crate::settings::Settings;

/// The tenant namespace the in-process server's API key writes to.
const TENANT: &str = "bench";
/// Raw events of a tenant: the one figure the read API has no call for. Valid on both
/// dialects (SQLite reads `$1` as the first parameter too).
const RAW_COUNT: &str = "select count(*) from events_raw where namespace = $1";
/// How long the in-process server may take to shut down after the run.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections of the probe's own Postgres pool.
const PROBE_CONNECTIONS: u32 = 2;

/// Install the tracing subscriber of `conveyor bench`: `RUST_LOG` if set, else warnings
/// only, so the in-process server's info logs do not bury the results. Logs go to stderr.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .try_init();
}

/// The ingest workload's server in this process: the real [`Server`] on a fresh database.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcessServer;

impl InProcessIngest for InProcessServer {
    fn ingest<'a>(
        &'a self,
        backend: &'a Backend,
        params: &'a IngestParams,
        progress: Progress,
        interrupt: &'a CancellationToken,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Report>>> {
        in_process(backend, params, progress, interrupt).boxed()
    }
}

/// Start the real server on a fresh database of `backend` (a Postgres database
/// `conveyor_bench_ingest_<pid>_<random>`, or a temp SQLite file opened as `serve` opens
/// it) on a free port with an API key of its own, drive it, stop it, and remove the
/// database, also when cancelled. `interrupt` ends the run early, stopping the server
/// before the database goes. The report's backend is the database's. With `params.outage`
/// (Postgres only) the server's connections go through a [`TcpProxy`] the driver cuts.
///
/// # Errors
/// When the database cannot be created, the server cannot start or fails while running;
/// when interrupted; a message naming `--outage-secs` for an outage on SQLite or on a
/// Postgres reached through a unix socket.
async fn in_process(
    backend: &Backend,
    params: &IngestParams,
    progress: Progress,
    interrupt: &CancellationToken,
) -> anyhow::Result<Vec<Report>> {
    let log = TempPath::new("log");
    match backend {
        Backend::Postgres { admin_url } => {
            let database = ScratchDatabase::create(admin_url, Some("ingest")).await?;
            let direct = database.connect_options();
            let proxy = if params.outage.is_zero() {
                None
            } else {
                let target = tcp_address(&direct).await?;
                let proxy = TcpProxy::start(target)
                    .await
                    .context("--outage-secs: starting the proxy in front of Postgres")?;
                Some(Arc::new(proxy))
            };
            let served = match &proxy {
                Some(proxy) => direct.clone().host("127.0.0.1").port(proxy.addr().port()),
                None => direct.clone(),
            };
            let name = database.name();
            let pool = connect(served, SERVE_CONNECTIONS)
                .await
                .with_context(|| format!("connecting to {name}"))?;
            let probe_pool = connect(direct, PROBE_CONNECTIONS)
                .await
                .with_context(|| format!("connecting the probe to {name}"))?;
            let (store, probe) = (PgStore::new(pool.clone()), PgStore::new(probe_pool.clone()));
            let probe = Probe::new(probe, backend);
            // the server's pool reaches its database through the proxy until it has stopped
            let result = drive(
                store,
                probe,
                proxy.clone(),
                params,
                progress,
                &log.path,
                interrupt,
            )
            .await;
            pool.close().await;
            drop(proxy);
            probe_pool.close().await;
            let disposed = database.dispose().await;
            let reports = result?;
            disposed?;
            Ok(reports)
        }
        Backend::Sqlite => {
            anyhow::ensure!(
                params.outage.is_zero(),
                "--outage-secs: Postgres only (--backend postgres)"
            );
            let file = TempPath::new("db");
            let store = crate::database::open_sqlite(&file.path, SQLITE_SERVE_CONNECTIONS).await?;
            let probe = Probe::new(store.clone(), backend);
            let result = drive(
                store.clone(),
                probe,
                None,
                params,
                progress,
                &log.path,
                interrupt,
            )
            .await;
            store.pool().close().await;
            result
        }
    }
}

/// A pool of at most `connections` on `options`, waiting up to 5 s for a connection.
async fn connect(options: PgConnectOptions, connections: u32) -> sqlx::Result<PgPool> {
    PgStore::pool_options()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// The TCP address of the Postgres server `options` connect to, for the outage's proxy.
///
/// # Errors
/// A message naming `--outage-secs` when they connect through a unix socket or the host
/// does not resolve.
async fn tcp_address(options: &PgConnectOptions) -> anyhow::Result<std::net::SocketAddr> {
    let host = options.get_host();
    if options.get_socket().is_some() || host.starts_with('/') {
        anyhow::bail!("--outage-secs: needs Postgres over TCP; --database-url names a unix socket");
    }
    tokio::net::lookup_host((host, options.get_port()))
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .with_context(|| format!("--outage-secs: cannot resolve the Postgres host {host}"))
}

/// Bind the server on `store`, run the driver against it with `probe` reading the same
/// database (until done or `interrupt`), cutting `proxy` for the outage if there is one,
/// stop the server, and add what the database holds to the `bulk` report.
async fn drive<S: PipelineStore + RawCount>(
    store: S,
    probe: Probe<S>,
    proxy: Option<Arc<TcpProxy>>,
    params: &IngestParams,
    progress: Progress,
    log_dir: &Path,
    interrupt: &CancellationToken,
) -> anyhow::Result<Vec<Report>> {
    let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().context("the loopback address")?,
        log: crate::LogConfig {
            dir: log_dir.to_path_buf(),
            ..crate::LogConfig::default()
        },
        legacy_spool_dir: log_dir.join("no-legacy-spool"),
        ..Settings::default()
    };
    settings.api_keys.insert(key.clone(), TENANT.to_owned());
    let server = Server::bind(store.clone(), settings).await?;
    let base = format!("http://{}", server.local_addr());
    let token = CancellationToken::new();
    // a cancelled bench (ctrl-c) drops this, which stops the server too
    let _stop = token.clone().drop_guard();
    let running = tokio::spawn(server.run(token.clone().cancelled_owned()));

    let prober = probe.clone();
    let caught_up = move |accepted: u64| {
        let probe = prober.clone();
        async move { probe.caught_up(accepted).await }.boxed()
    };
    let driver = async {
        match proxy {
            Some(proxy) => {
                conveyor_bench::ingest_with_outage(params, &base, &key, caught_up, proxy, progress)
                    .await
            }
            None => conveyor_bench::ingest(params, &base, &key, caught_up, progress).await,
        }
    };
    let driven = tokio::select! {
        driven = driver => driven,
        () = interrupt.cancelled() => Err(anyhow::anyhow!("interrupted")),
    };

    token.cancel();
    let stopped = tokio::time::timeout(SHUTDOWN_TIMEOUT, running)
        .await
        .context("the server did not stop within 30 s")?
        .context("the server panicked")?;
    let mut reports = driven?;
    stopped.context("the server failed")?;
    for report in &mut reports {
        if report.variant == "bulk" {
            probe.account(report).await?;
        } else {
            report.backend = probe.backend.to_owned();
        }
    }
    Ok(reports)
}

/// Reads the server's database to see how far the pipeline got.
#[derive(Debug, Clone)]
struct Probe<S> {
    store: S,
    /// `postgres` or `sqlite`, for the reports.
    backend: &'static str,
    /// The first UTC day events may be stamped with (they are stamped when sent).
    first_day: NaiveDate,
}

/// What the database holds of the tenant's events.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Events counted in the daily rollups.
    rollups: i64,
    /// Rows in `events_raw`.
    raw: i64,
    /// Dead letters in the server's queues.
    dead: i64,
}

impl<S: PipelineStore + RawCount> Probe<S> {
    /// A probe on `store`, a database of `backend`, from today on.
    fn new(store: S, backend: &Backend) -> Self {
        Self {
            store,
            backend: backend.name(),
            first_day: Utc::now().date_naive(),
        }
    }

    /// The queues have settled, and the raw store and the rollups hold all `accepted`
    /// events, or a dead letter says they never will. Asked every 20 ms while the pipeline
    /// catches up, so the costly reads wait for the cheap ones: the rollups are read only
    /// once the queues have settled, and `events_raw` is counted (a scan of every stored
    /// row: it took ~40% of the database's active samples when counted every time) only
    /// once the rollups hold every event.
    async fn caught_up(&self, accepted: u64) -> anyhow::Result<bool> {
        let (settled, dead) = self.settled().await?;
        if !settled {
            return Ok(false);
        }
        // settled but incomplete and no dead letter: requests still in the ingestion log
        if dead > 0 {
            return Ok(true);
        }
        let accepted = i64::try_from(accepted).unwrap_or(i64::MAX);
        Ok(self.rollups().await? >= accepted && self.raw().await? >= accepted)
    }

    async fn held(&self) -> anyhow::Result<Held> {
        Ok(Held {
            dead: self.settled().await?.1,
            rollups: self.rollups().await?,
            raw: self.raw().await?,
        })
    }

    /// Whether no queue has anything pending or in flight, and the dead letters.
    async fn settled(&self) -> anyhow::Result<(bool, i64)> {
        let stats = self.store.stats().await.context("reading queue stats")?;
        let settled = stats.iter().all(|s| s.pending == 0 && s.in_flight == 0);
        Ok((settled, stats.iter().map(|s| s.dead).sum()))
    }

    /// Events counted in the tenant's daily rollups.
    async fn rollups(&self) -> anyhow::Result<i64> {
        let today = Utc::now().date_naive();
        Ok(self
            .store
            .summary(TENANT, self.first_day.min(today), today)
            .await
            .context("reading the rollups")?
            .total)
    }

    /// The tenant's rows in `events_raw`.
    async fn raw(&self) -> anyhow::Result<i64> {
        self.store
            .raw_count(TENANT)
            .await
            .context("counting events_raw")
    }

    /// Add what the database holds to `report`: counts `raw_stored`, `rollup_total`, `dead`,
    /// and checks `raw_holds_all_accepted`, `rollups_hold_all_accepted`.
    async fn account(&self, report: &mut Report) -> anyhow::Result<()> {
        let held = self.held().await?;
        let accepted = i64::try_from(report.events).unwrap_or(i64::MAX);
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        report.backend = self.backend.to_owned();
        report.counts.insert("raw_stored".into(), count(held.raw));
        report
            .counts
            .insert("rollup_total".into(), count(held.rollups));
        report.counts.insert("dead".into(), count(held.dead));
        report
            .checks
            .insert("raw_holds_all_accepted".into(), held.raw == accepted);
        report
            .checks
            .insert("rollups_hold_all_accepted".into(), held.rollups == accepted);
        Ok(())
    }
}

/// What the probe needs beyond [`PipelineStore`]: a raw-event count. One plain impl per
/// store: the pools' types differ.
trait RawCount: Clone + Send + Sync + 'static {
    /// Rows of `events_raw` in `namespace`.
    fn raw_count<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, sqlx::Result<i64>>;
}

impl RawCount for PgStore {
    fn raw_count<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, sqlx::Result<i64>> {
        sqlx::query_scalar(RAW_COUNT)
            .bind(namespace)
            .fetch_one(self.pool())
            .boxed()
    }
}

impl RawCount for SqliteStore {
    fn raw_count<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, sqlx::Result<i64>> {
        sqlx::query_scalar(RAW_COUNT)
            .bind(namespace)
            .fetch_one(self.pool())
            .boxed()
    }
}

/// A path under the temp directory, `conveyor-bench-<pid>-<random>.<kind>`, removed on drop
/// with whatever is there (a log directory, or a SQLite file and its WAL companions).
#[derive(Debug)]
struct TempPath {
    path: PathBuf,
}

impl TempPath {
    fn new(kind: &str) -> Self {
        let name = format!(
            "conveyor-bench-{}-{}.{kind}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        Self {
            path: std::env::temp_dir().join(name),
        }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.path.as_os_str().to_owned();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}
