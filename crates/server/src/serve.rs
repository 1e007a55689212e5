//! `conveyor serve` as a library: [`Settings`] from the flags, a [`Server`] bound to its
//! listener, and [`Server::run`], which runs the HTTP API, the pipeline's workers, the
//! partition manager and the spool forwarder under one cancellation token.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use conveyor::{PgStore, WorkerPool};
use conveyor_handlers::{PartitionManager, Pipeline, RetryPolicy};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::{app, AppState};
use crate::config::{
    ServeArgs, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DECOMPRESSED_BYTES,
};
use crate::spool::Spool;

/// How often the partition manager runs.
const PARTITION_INTERVAL: Duration = Duration::from_secs(3600);

/// Everything `serve` needs besides the database, typed and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port. Defaults to `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// API key → tenant namespace. Empty by default; `serve` refuses to start without one.
    pub api_keys: HashMap<String, String>,
    /// The backends, embedder and retry policy of the pipeline. Defaults to all four backends.
    pub pipeline: Pipeline,
    /// Day partitions kept ahead and behind. Defaults to 7 ahead, 30 days of retention.
    pub partitions: PartitionManager,
    /// Request size limits.
    pub limits: Limits,
    /// How long analytics responses are cached; zero disables the cache. Defaults to 5 s.
    pub cache_ttl: Duration,
    /// The spool directory. Defaults to `./conveyor-spool`.
    pub spool_dir: PathBuf,
    /// Whether this process runs the pipeline's workers. Defaults to true.
    pub run_workers: bool,
    /// Events timestamped further ahead of the server's clock are rejected. Defaults to 1 day.
    pub max_future: Duration,
}

/// Request size limits of the ingestion API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body on the wire (compressed size for gzip). Defaults to 10 MiB.
    pub max_body_bytes: usize,
    /// Largest gzip body once decompressed. Defaults to 50 MiB.
    pub max_decompressed_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses"),
            api_keys: HashMap::new(),
            pipeline: Pipeline::default(),
            partitions: PartitionManager::default(),
            limits: Limits::default(),
            cache_ttl: Duration::from_secs(5),
            spool_dir: PathBuf::from("./conveyor-spool"),
            run_workers: true,
            max_future: Duration::from_secs(86_400),
        }
    }
}

impl Settings {
    /// The settings `conveyor serve` flags describe.
    ///
    /// # Errors
    /// A message naming `--api-key` when no key is given or a key repeats.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Settings> {
        let mut api_keys = HashMap::new();
        for k in &args.api_keys {
            if api_keys
                .insert(k.key.clone(), k.namespace.clone())
                .is_some()
            {
                anyhow::bail!("--api-key (CONVEYOR_API_KEYS): a key is given twice");
            }
        }
        if api_keys.is_empty() {
            anyhow::bail!("--api-key (CONVEYOR_API_KEYS): at least one KEY=NAMESPACE is required");
        }
        if args.backends.is_empty() {
            anyhow::bail!("--backends (CONVEYOR_BACKENDS): name at least one backend");
        }
        Ok(Settings {
            listen: args.listen,
            api_keys,
            pipeline: Pipeline {
                backends: args.backends.clone(),
                retry: RetryPolicy {
                    max_retries: args.backend_max_retries,
                    base_delay: Duration::from_millis(args.backend_retry_base_ms),
                },
                ..Pipeline::default()
            },
            partitions: PartitionManager {
                ahead_days: args.partitions_ahead,
                retention_days: args.retention_days,
            },
            limits: Limits {
                max_body_bytes: args.max_body_bytes,
                max_decompressed_bytes: args.max_decompressed_bytes,
            },
            cache_ttl: Duration::from_millis(args.cache_ttl_ms),
            spool_dir: args.spool_dir.clone(),
            run_workers: !args.no_workers,
            max_future: Duration::from_secs(args.max_future_secs),
        })
    }
}

/// A bound, migrated server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    store: PgStore,
    state: AppState,
    partitions: PartitionManager,
    workers: Option<WorkerPool<PgStore>>,
}

impl Server {
    /// Apply both migration sets, run one partition-maintenance pass, open the spool, build
    /// the worker pool and bind the listener.
    ///
    /// `store`'s namespace is the server's own outbox namespace (the global `--namespace`);
    /// tenant namespaces come from the API keys and travel inside the payloads.
    ///
    /// # Errors
    /// When migrations, partition maintenance, the spool, the pool's registration or the
    /// bind fail; the message says which.
    pub async fn bind(store: PgStore, settings: Settings) -> anyhow::Result<Server> {
        if settings.api_keys.is_empty() {
            anyhow::bail!("--api-key (CONVEYOR_API_KEYS): at least one KEY=NAMESPACE is required");
        }
        conveyor_handlers::migrate(store.pool())
            .await
            .context("applying migrations")?;
        let report = settings
            .partitions
            .maintain(store.pool(), chrono::Utc::now().date_naive())
            .await
            .context("maintaining day partitions")?;
        log_partitions(&report);
        let spool = Spool::open(&settings.spool_dir).with_context(|| {
            format!(
                "--spool-dir (CONVEYOR_SPOOL_DIR): cannot open {}",
                settings.spool_dir.display()
            )
        })?;
        let workers = if settings.run_workers {
            Some(
                crate::workers::build_pool(&store, &settings.pipeline)
                    .context("registering the pipeline's handlers")?,
            )
        } else {
            None
        };
        let listener = TcpListener::bind(settings.listen).await.with_context(|| {
            format!(
                "--listen (CONVEYOR_LISTEN): cannot bind {}",
                settings.listen
            )
        })?;
        let state = AppState::new(store.clone(), &settings, Arc::new(spool));
        Ok(Server {
            listener,
            store,
            state,
            partitions: settings.partitions,
            workers,
        })
    }

    /// The address the API listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serve until `shutdown` completes or a task fails, then shut everything down
    /// gracefully: in-flight requests finish (bounded by the request timeout), workers
    /// finish or release their batches.
    ///
    /// # Errors
    /// When the HTTP server or the worker pool fails, or stops without being asked to.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let token = CancellationToken::new();
        let addr = self.local_addr();
        let Server {
            listener,
            store,
            state,
            partitions,
            workers,
        } = self;
        let spool = state.spool.clone();
        let router = app(state);

        let mut tasks: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();
        let stop = token.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("http server");
            ("http", served)
        });
        if let Some(pool) = workers {
            let stop = token.clone();
            tasks.spawn(async move {
                let ran = pool
                    .run(stop.cancelled_owned())
                    .await
                    .context("worker pool");
                ("workers", ran)
            });
        }
        let (db, stop) = (store.pool().clone(), token.clone());
        tasks.spawn(async move {
            // a pass now (cheap: `bind` just ran one) and then hourly; failures are logged
            partitions.run(db, PARTITION_INTERVAL, stop).await;
            ("partitions", Ok(()))
        });
        let stop = token.clone();
        tasks.spawn(async move {
            spool.forward(store, stop).await;
            ("spool", Ok(()))
        });
        let stop = token.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => stop.cancel(),
                () = stop.cancelled() => {}
            }
        });
        tracing::info!(%addr, "conveyor serving");

        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let (task, outcome) = match joined {
                Ok(done) => done,
                Err(e) => (
                    "a server task",
                    Err(anyhow::Error::new(e).context("task panicked")),
                ),
            };
            let expected = token.is_cancelled();
            match outcome {
                Ok(()) if expected => tracing::info!(task, "stopped"),
                Ok(()) => {
                    tracing::error!(task, "exited without being asked to; shutting down");
                    if result.is_ok() {
                        result = Err(anyhow::anyhow!("{task} exited unexpectedly"));
                    }
                }
                Err(e) => {
                    tracing::error!(task, error.cause_chain = ?e, error.message = %e, "failed; shutting down");
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
            token.cancel();
        }
        result
    }
}

fn log_partitions(report: &conveyor_handlers::PartitionReport) {
    if !report.created.is_empty() || !report.dropped.is_empty() {
        tracing::info!(
            created = report.created.len(),
            dropped = report.dropped.len(),
            "partitions maintained"
        );
    }
    if report.default_rows > 0 {
        tracing::warn!(
            default_rows = report.default_rows,
            "events_raw_default holds rows: some events' days have no partition"
        );
    }
}

/// Completes on ctrl-c or SIGTERM: the `shutdown` future of the `serve` command.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error.message = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error.message = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::config::{Cli, Command};

    fn args(extra: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from([&["conveyor", "serve"][..], extra].concat()).unwrap();
        match cli.command {
            Command::Serve(a) => *a,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn settings_follow_the_flags() {
        let s = Settings::from_args(&args(&[
            "--api-key",
            "k1=acme",
            "--backends",
            "raw,rollup",
            "--no-workers",
            "--backend-max-retries",
            "1",
        ]))
        .unwrap();
        assert_eq!(s.api_keys["k1"], "acme");
        assert_eq!(s.pipeline.backends.len(), 2);
        assert_eq!(s.pipeline.retry.max_retries, 1);
        assert!(!s.run_workers);
    }

    #[test]
    fn default_settings_match_the_flag_defaults() {
        let from_flags = Settings::from_args(&args(&["--api-key", "k=t"])).unwrap();
        let default = Settings::default();
        assert_eq!(from_flags.listen, default.listen);
        assert_eq!(from_flags.limits, default.limits);
        assert_eq!(from_flags.partitions, default.partitions);
        assert_eq!(from_flags.cache_ttl, default.cache_ttl);
        assert_eq!(from_flags.max_future, default.max_future);
        assert_eq!(from_flags.pipeline.retry, default.pipeline.retry);
    }

    #[test]
    fn a_repeated_key_is_refused_naming_the_flag() {
        let err =
            Settings::from_args(&args(&["--api-key", "k=a", "--api-key", "k=b"])).unwrap_err();
        assert!(err.to_string().contains("--api-key"), "{err}");
    }
}
