//! The `throughput` workload: prefill N no-op events with bulk publishes, then drain them
//! with a pool of no-op handlers; events/s for each phase, and optionally the best batch
//! size × concurrency of a small grid.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor::middleware::TracingMiddleware;
use conveyor::{HandlerOptions, HookEvent, PoolBuilder, Store, WorkerPool};
use tokio_util::sync::CancellationToken;

use crate::backend::{on_scratch, Backend, OnStore, Scratch};
use crate::probe::{CountNoop, Tally, Tick};
use crate::progress::Progress;
use crate::report::{secs, Report, Row};

/// Batch sizes the sweep tries.
const SWEEP_BATCH_SIZES: [usize; 3] = [50, 100, 500];
/// Concurrencies the sweep tries.
const SWEEP_CONCURRENCY: [usize; 4] = [1, 2, 4, 8];
/// Connections a pool needs besides one per worker (listener, heartbeats, maintenance),
/// plus one for publishing.
const SPARE_CONNECTIONS: usize = 6;

/// Parameters of [`throughput`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ThroughputParams {
    /// Events to publish and drain. Defaults to 100,000.
    pub events: u64,
    /// Events per handler batch. Defaults to 100.
    pub batch_size: usize,
    /// Concurrent workers (batches in flight). Defaults to 4.
    pub concurrency: usize,
    /// Events per `publish_batch` call while prefilling. Defaults to 5,000.
    pub publish_chunk: usize,
    /// Also try batch sizes {50, 100, 500} × concurrency {1, 2, 4, 8} on `sweep_events`
    /// events each and report the best. Defaults to false.
    pub sweep: bool,
    /// Events per sweep configuration. Defaults to 50,000.
    pub sweep_events: u64,
    /// Give up on a drain after this long. Defaults to 10 minutes.
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// The pool's delivered retention: zero deletes each delivered event as its batch
    /// completes. Defaults to the framework's 10 minutes.
    #[serde(with = "secs")]
    pub delivered_retention: Duration,
    /// Drain with hooks (a sync hook counting committed events, an async one) and the
    /// tracing middleware on. Defaults to false.
    pub hooks: bool,
}

impl Default for ThroughputParams {
    fn default() -> Self {
        Self {
            events: 100_000,
            batch_size: 100,
            concurrency: 4,
            publish_chunk: 5_000,
            sweep: false,
            sweep_events: 50_000,
            timeout: Duration::from_secs(600),
            delivered_retention: Duration::from_secs(600),
            hooks: false,
        }
    }
}

/// What one publish-then-drain run measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    publish: Duration,
    drain: Duration,
}

/// One publish-then-drain run's settings.
#[derive(Debug, Clone, Copy)]
struct Run {
    events: u64,
    batch_size: usize,
    concurrency: usize,
    publish_chunk: usize,
    timeout: Duration,
    delivered_retention: Duration,
    hooks: bool,
    progress: Progress,
}

/// Run the throughput workload on `backend`: a `publish` and a `drain` report, and with
/// `sweep` a `sweep` report whose rate is the best configuration's drain rate and whose
/// rows hold every configuration.
///
/// Each run uses a fresh scratch database. The drain is timed from the pool's start until
/// the handlers have seen every event.
///
/// # Errors
/// When the scratch database cannot be created, publishing or the pool fails, or a drain
/// does not finish within `timeout`.
pub async fn throughput(
    backend: &Backend,
    params: &ThroughputParams,
    progress: Progress,
) -> anyhow::Result<Vec<Report>> {
    let run = Run {
        events: params.events,
        batch_size: params.batch_size,
        concurrency: params.concurrency,
        publish_chunk: params.publish_chunk,
        timeout: params.timeout,
        delivered_retention: params.delivered_retention,
        hooks: params.hooks,
        progress,
    };
    let (measured, caveats) = measure(backend, run).await?;
    let name = backend.name();
    let mut reports = vec![
        Report::new(
            "throughput",
            "publish",
            name,
            params,
            run.events,
            measured.publish,
        ),
        Report::new(
            "throughput",
            "drain",
            name,
            params,
            run.events,
            measured.drain,
        ),
    ];
    for report in &mut reports {
        report.notes.extend(caveats.iter().cloned());
    }
    if params.sweep {
        reports.push(sweep(backend, params, progress).await?);
    }
    Ok(reports)
}

/// Every grid configuration on `params.sweep_events`, best drain rate first in the notes.
async fn sweep(
    backend: &Backend,
    params: &ThroughputParams,
    progress: Progress,
) -> anyhow::Result<Report> {
    let grid: Vec<(usize, usize)> = SWEEP_BATCH_SIZES
        .iter()
        .flat_map(|b| SWEEP_CONCURRENCY.iter().map(move |c| (*b, *c)))
        .collect();
    let bar = progress.bar("throughput sweep", grid.len() as u64);
    let mut rows = Vec::with_capacity(grid.len());
    let mut best: Option<(usize, usize, Duration)> = None;
    for (batch_size, concurrency) in grid {
        bar.message(format!("batch {batch_size} × {concurrency}"));
        let run = Run {
            events: params.sweep_events,
            batch_size,
            concurrency,
            publish_chunk: params.publish_chunk,
            timeout: params.timeout,
            delivered_retention: params.delivered_retention,
            hooks: params.hooks,
            progress: Progress::Hidden,
        };
        let (measured, _) = measure(backend, run).await?;
        let rate = |d: Duration| (run.events as f64 / d.as_secs_f64()).round();
        rows.push(
            Row::default()
                .with("batch_size", batch_size)
                .with("concurrency", concurrency)
                .with("publish_per_s", rate(measured.publish))
                .with("drain_per_s", rate(measured.drain)),
        );
        if best.is_none_or(|(_, _, d)| measured.drain < d) {
            best = Some((batch_size, concurrency, measured.drain));
        }
        bar.inc(1);
    }
    bar.finish();
    let (batch_size, concurrency, drain) = best.context("the sweep grid is empty")?;
    let grid = serde_json::json!({
        "sweep_events": params.sweep_events,
        "batch_sizes": SWEEP_BATCH_SIZES,
        "concurrency": SWEEP_CONCURRENCY,
        "publish_chunk": params.publish_chunk,
    });
    let mut report = Report::new(
        "throughput",
        "sweep",
        backend.name(),
        &grid,
        params.sweep_events,
        drain,
    )
    .count("best_batch_size", batch_size as u64)
    .count("best_concurrency", concurrency as u64)
    .note(format!(
        "best drain: batch_size={batch_size} concurrency={concurrency}"
    ));
    report.rows = rows;
    Ok(report)
}

/// Publish then drain `run.events` on a fresh scratch database of `backend`; what was
/// measured and the server's [caveats](crate::backend::Scratch::caveats).
async fn measure(backend: &Backend, run: Run) -> anyhow::Result<(Measured, Vec<String>)> {
    let connections = u32::try_from(run.concurrency + SPARE_CONNECTIONS).context("concurrency")?;
    on_scratch(backend, connections, run).await
}

impl OnStore for Run {
    type Output = Measured;

    async fn run<S: Store>(self, store: S, _: &Scratch) -> anyhow::Result<Measured> {
        publish_and_drain(store, self).await
    }
}

async fn publish_and_drain<S: Store>(store: S, run: Run) -> anyhow::Result<Measured> {
    let progress = run.progress;
    let bar = progress.bar("throughput publish", run.events);
    let chunk = run.publish_chunk.max(1) as u64;
    let started = Instant::now();
    let mut next = 0;
    while next < run.events {
        let end = run.events.min(next + chunk);
        store
            .publish_batch((next..end).map(|n| Tick { n }))
            .await
            .context("publishing no-op events")?;
        bar.inc(end - next);
        next = end;
    }
    let publish = started.elapsed();
    bar.finish();

    let tally = Tally::new();
    let committed = Arc::new(AtomicU64::new(0));
    let mut pool = WorkerPool::builder(store)
        .register_with(
            CountNoop(tally.clone()),
            HandlerOptions::default()
                .concurrency(run.concurrency)
                .batch_size(run.batch_size),
        )
        .delivered_retention(run.delivered_retention);
    if run.hooks {
        pool = with_hooks(pool, committed.clone());
    }
    let pool = pool.build()?;
    let stop = CancellationToken::new();
    let bar = progress.bar("throughput drain", run.events);
    let started = Instant::now();
    let running = tokio::spawn(pool.run(stop.clone().cancelled_owned()));
    let drain = tally
        .drain(run.events, run.timeout, &bar, started, stop, running)
        .await?;
    if run.hooks {
        let seen = committed.load(Ordering::Relaxed);
        anyhow::ensure!(
            seen == run.events,
            "the after-commit hook counted {seen} of {} events",
            run.events
        );
    }
    Ok(Measured { publish, drain })
}

/// `pool` with what `--hooks` measures: a sync hook adding each committed batch's delivered
/// events to `committed`, an async hook that does nothing, and the tracing middleware.
fn with_hooks<S: Store>(pool: PoolBuilder<S>, committed: Arc<AtomicU64>) -> PoolBuilder<S> {
    pool.hook(move |event: &HookEvent| {
        if let HookEvent::AfterCommit(batch) = event {
            committed.fetch_add(batch.counts.delivered as u64, Ordering::Relaxed);
        }
    })
    .async_hook(|_: Arc<HookEvent>| async {})
    .middleware(TracingMiddleware)
}
