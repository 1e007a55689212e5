//! The `latency` workload: an idle pool, single events published at a fixed rate, and the
//! percentiles of publish → handler start.
//!
//! Each payload carries the instant it was stamped, just before its publish; the handler
//! records each item's lag as the item starts (all at once for a batch handled in one go;
//! one after another, after `item_work` each, unless `item_concurrency` runs them at once). The poll interval is long (5 s by default), so what is
//! measured is the wake-up (LISTEN/NOTIFY, or SQLite's in-process wake), not polling.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor::{HandlerOptions, Store, WorkerPool};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::backend::{on_scratch, Backend, Job, OnStore, Scratch};
use crate::probe::{RecordLag, Stamp, Tally};
use crate::progress::{Bar, Progress};
use crate::report::{secs, Percentiles, Report};

/// Connections besides one per worker: listener, heartbeats, maintenance, the publisher.
const SPARE_CONNECTIONS: usize = 6;

/// Parameters of [`latency`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyParams {
    /// Events published per second, one at a time. Defaults to 100.
    pub rate: f64,
    /// How long to publish for. Defaults to 10 s.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// The idle workers' poll interval, long so that wake-ups are measured. Defaults to 5 s.
    #[serde(with = "secs")]
    pub poll_interval: Duration,
    /// Concurrent workers. Defaults to 2.
    pub concurrency: usize,
    /// The most events per batch. Defaults to 10.
    pub batch_size: usize,
    /// Events published (at `rate`) and handled before measuring, to warm connections and
    /// statement caches. Defaults to 20.
    pub warmup: u64,
    /// How long to wait for the last events after publishing ends. Defaults to 10 s.
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// Items of one batch handled at once (`conveyor::items::for_each_concurrent`); each
    /// item's lag is taken as it starts. Defaults to 1: one after another.
    pub item_concurrency: usize,
    /// Simulated I/O per item (a sleep after its lag is taken). Defaults to zero.
    #[serde(with = "secs")]
    pub item_work: Duration,
}

impl Default for LatencyParams {
    fn default() -> Self {
        Self {
            rate: 100.0,
            duration: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
            concurrency: 2,
            batch_size: 10,
            warmup: 20,
            timeout: Duration::from_secs(10),
            item_concurrency: 1,
            item_work: Duration::ZERO,
        }
    }
}

/// Run the latency workload on `backend`: one `publish_to_handle` report whose percentiles
/// are publish → handler start in milliseconds, and whose rate is the publish rate reached.
/// Events that did not arrive within `timeout` are counted as `missing`.
///
/// # Errors
/// When the scratch database cannot be created, `rate` is not positive, or publishing or
/// the pool fails.
pub async fn latency(
    backend: &Backend,
    params: &LatencyParams,
    progress: Progress,
) -> anyhow::Result<Vec<Report>> {
    anyhow::ensure!(
        params.rate.is_finite() && params.rate > 0.0,
        "rate must be above zero"
    );
    let connections =
        u32::try_from(params.concurrency + SPARE_CONNECTIONS).context("concurrency")?;
    let (measured, caveats) = on_scratch(backend, connections, Job { params, progress }).await?;

    let mut report = Report::new(
        "latency",
        "publish_to_handle",
        backend.name(),
        params,
        measured.published,
        measured.publishing,
    )
    .latency(Percentiles::of(&measured.lags_ms));
    let missing = measured
        .published
        .saturating_sub(measured.lags_ms.len() as u64);
    if missing > 0 {
        report = report.count("missing", missing).note(format!(
            "{missing} events not handled within {:?}",
            params.timeout
        ));
    }
    report.notes.extend(caveats);
    Ok(vec![report])
}

/// What one latency run measured.
#[derive(Debug)]
pub(crate) struct Measured {
    published: u64,
    publishing: Duration,
    lags_ms: Vec<f64>,
}

/// One latency run on a scratch database.
impl OnStore for Job<'_, LatencyParams> {
    type Output = Measured;

    async fn run<S: Store>(self, store: S, _: &Scratch) -> anyhow::Result<Measured> {
        measure(store, self.params, self.progress).await
    }
}

async fn measure<S: Store>(
    store: S,
    params: &LatencyParams,
    progress: Progress,
) -> anyhow::Result<Measured> {
    let tally = Tally::new();
    let recorder = RecordLag::new(tally.clone(), params.item_concurrency, params.item_work);
    let pool = WorkerPool::builder(store.clone())
        .register_with(
            recorder.clone(),
            HandlerOptions::default()
                .concurrency(params.concurrency)
                .batch_size(params.batch_size)
                .poll_interval(params.poll_interval),
        )
        .build()?;
    let stop = CancellationToken::new();
    let running = tokio::spawn(pool.run(stop.clone().cancelled_owned()));
    let measured = publish_and_collect(&store, &tally, &recorder, params, progress).await;
    stop.cancel();
    running.await.context("worker pool panicked")??;
    measured
}

async fn publish_and_collect<S: Store>(
    store: &S,
    tally: &Tally,
    recorder: &RecordLag,
    params: &LatencyParams,
    progress: Progress,
) -> anyhow::Result<Measured> {
    let period = Duration::from_secs_f64(1.0 / params.rate);
    // warm up; the first events may wait for a poll if the listener is not up yet
    let warmup = progress.bar("latency warm-up", params.warmup);
    publish_paced(store, params.warmup, period, &warmup).await?;
    let warmed = tally
        .wait_for(params.warmup, params.poll_interval + params.timeout, |_| {})
        .await;
    warmup.finish();
    anyhow::ensure!(warmed, "warm-up events were not handled");
    recorder.take();

    let count = (params.rate * params.duration.as_secs_f64()).round() as u64;
    let bar = progress.bar("latency", count);
    let started = Instant::now();
    publish_paced(store, count, period, &bar).await?;
    let publishing = started.elapsed();
    tally
        .wait_for(params.warmup + count, params.timeout, |_| {})
        .await;
    bar.finish();
    Ok(Measured {
        published: count,
        publishing,
        lags_ms: recorder.take(),
    })
}

/// Publish `count` stamped events one at a time, one per `period`.
async fn publish_paced<S: Store>(
    store: &S,
    count: u64,
    period: Duration,
    bar: &Bar,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for _ in 0..count {
        tick.tick().await;
        store.publish(Stamp::now()).await.context("publishing")?;
        bar.inc(1);
    }
    Ok(())
}
