//! `conveyor serve` as a library: a [`Server`] bound to its listener over any
//! [`PipelineStore`], and [`Server::run`], which runs the HTTP API, the pipeline's workers,
//! the partition (retention) maintenance and the ingestion log's publisher (supervised:
//! restarted after a panic) under one cancellation token.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use conveyor::WorkerPool;
use conveyor_handlers::{PartitionManager, PipelineStore};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::app;
use crate::ingest::{self, IngestLog};
use crate::settings::Settings;
use crate::state::AppState;

/// How often the partition manager runs.
const PARTITION_INTERVAL: Duration = Duration::from_secs(3600);

/// A bound, migrated server, ready to [`run`](Server::run).
///
/// `S` is the backend: [`PgStore`](conveyor::PgStore) or [`SqliteStore`](conveyor::SqliteStore).
#[derive(Debug)]
pub struct Server<S: PipelineStore> {
    listener: TcpListener,
    store: S,
    state: AppState<S>,
    partitions: PartitionManager,
    workers: Option<WorkerPool<S>>,
    /// The registered handlers' queues: the labels of the per-queue metrics.
    queues: Vec<conveyor::Queue>,
    backends: Arc<[conveyor_handlers::Backend]>,
}

impl<S: PipelineStore> Server<S> {
    /// Apply both migration sets, run one maintenance pass (partitions, retention), open the
    /// ingestion log (moving in any batch an earlier version spooled), build the worker pool
    /// and bind the listener.
    ///
    /// `store`'s namespace is the server's own outbox namespace (the global `--namespace`);
    /// tenant namespaces come from the API keys and travel inside the payloads.
    ///
    /// # Errors
    /// When migrations, partition maintenance, the log, the pool's registration or the
    /// bind fail; the message says which.
    pub async fn bind(store: S, settings: Settings) -> anyhow::Result<Server<S>> {
        if settings.api_keys.is_empty() {
            anyhow::bail!("--api-key (CONVEYOR_API_KEYS): at least one KEY=NAMESPACE is required");
        }
        store.migrate().await.context("applying migrations")?;
        let report = store
            .maintain(&settings.partitions, chrono::Utc::now().date_naive())
            .await
            .context("maintaining day partitions")?;
        report.log();
        let log = IngestLog::open(settings.log.clone()).with_context(|| {
            format!(
                "--log-dir (CONVEYOR_LOG_DIR): cannot open the ingestion log in {}",
                settings.log.dir.display()
            )
        })?;
        ingest::import_legacy_spool(&settings.legacy_spool_dir, &log)
            .await
            .with_context(|| {
                format!(
                    "--spool-dir (CONVEYOR_SPOOL_DIR): cannot move the batches in {} into the ingestion log",
                    settings.legacy_spool_dir.display()
                )
            })?;
        let pool = crate::workers::build_pool(&store, &settings.pipeline)
            .context("registering the pipeline's handlers")?;
        // the metrics' queue labels: the registered handlers' queues, workers or not
        let queues = pool.queues().cloned().collect();
        let workers = settings.run_workers.then_some(pool);
        let listener = TcpListener::bind(settings.listen).await.with_context(|| {
            format!(
                "--listen (CONVEYOR_LISTEN): cannot bind {}",
                settings.listen
            )
        })?;
        let state = AppState::new(store.clone(), &settings, log);
        Ok(Server {
            listener,
            store,
            state,
            partitions: settings.partitions,
            workers,
            queues,
            backends: settings.pipeline.backends.clone().into(),
        })
    }

    /// The address the API listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serve until `shutdown` completes or a task fails, then shut everything down
    /// gracefully: in-flight requests finish (bounded by the shutdown timeout), workers
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
            queues,
            backends,
        } = self;
        let log = state.log.clone();
        let metrics = state.metrics.clone();
        let http_limits = state.http;
        let router = app(state);

        let mut tasks: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();
        let stop = token.clone();
        tasks.spawn(async move {
            let served = crate::http::serve(listener, router, http_limits, stop)
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
        let (db, stop) = (store.clone(), token.clone());
        tasks.spawn(async move {
            // a pass now (cheap: `bind` just ran one) and then hourly; failures are logged
            partitions.run(db, PARTITION_INTERVAL, stop).await;
            ("partitions", Ok(()))
        });
        let (db, sampled, stop) = (store.clone(), log.clone(), token.clone());
        tasks.spawn(async move {
            crate::prometheus::sampler::run(db, sampled, queues, metrics, stop).await;
            ("metrics sampler", Ok(()))
        });
        let stop = token.clone();
        tasks.spawn(async move {
            ingest::publisher::run(log, store, backends, stop).await;
            ("ingestion log publisher", Ok(()))
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
