//! The `soak` workload: publish at a steady rate for a long run and report, interval by
//! interval, what was handled, the lag, the outbox's dead tuples and size, and this
//! process's RSS, so decay from bloat or leaks shows.

use std::time::Duration;

use anyhow::Context as _;
use conveyor::{HandlerOptions, Store, WorkerPool};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::backend::{on_scratch, Backend, Job, OnStore, Scratch};
use crate::probe::{RecordLag, Stamp, Tally};
use crate::progress::Progress;
use crate::report::{secs, Percentiles, Report, Row};
use crate::rss::current_rss_mib;

/// How often the publisher tops up to the target rate.
const PUBLISH_TICK: Duration = Duration::from_millis(20);
/// The most events per publish call when catching up.
const MAX_PUBLISH_CHUNK: u64 = 5_000;
/// Connections besides one per worker: listener, heartbeats, maintenance, publisher, probes.
const SPARE_CONNECTIONS: usize = 7;
/// The decay and growth a soak tolerates between its first and last interval.
const TOLERANCE: f64 = 0.10;
/// RSS growth always tolerated: a few MiB of allocator and cache warm-up is not a leak,
/// and 10% of a 10 MiB process is less than that.
const RSS_SLACK_MIB: f64 = 4.0;

/// Parameters of [`soak`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakParams {
    /// How long to publish. Defaults to 10 minutes.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Events published per second, steadily. Defaults to 2,000.
    pub rate: f64,
    /// The length of one reported interval. Defaults to 60 s.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// Concurrent workers. Defaults to 4.
    pub concurrency: usize,
    /// The most events per batch. Defaults to 100.
    pub batch_size: usize,
    /// How long delivered events are kept before the pruner deletes them; the server's
    /// setting. Defaults to 60 s.
    #[serde(with = "secs")]
    pub retention: Duration,
    /// How long to wait for the backlog to drain after publishing ends. Defaults to 60 s.
    #[serde(with = "secs")]
    pub drain_timeout: Duration,
}

impl Default for SoakParams {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(600),
            rate: 2_000.0,
            interval: Duration::from_secs(60),
            concurrency: 4,
            batch_size: 100,
            retention: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// Run the soak on `backend`: one `steady` report with a row per interval, the first and
/// last interval's handled rate, and two checks: `last_interval_within_10pct_of_first`
/// (handled rate) and `rss_flat` (RSS in the last interval at most 10%, or 4 MiB, above
/// the first). Postgres server settings that skew the result (autovacuum off, say) are noted.
///
/// # Errors
/// When the scratch database cannot be created, the parameters are zero, or publishing,
/// probing or the pool fails.
pub async fn soak(
    backend: &Backend,
    params: &SoakParams,
    progress: Progress,
) -> anyhow::Result<Vec<Report>> {
    anyhow::ensure!(
        params.rate.is_finite() && params.rate > 0.0,
        "rate must be above zero"
    );
    anyhow::ensure!(
        !params.interval.is_zero() && !params.duration.is_zero(),
        "duration and interval must be above zero"
    );
    let connections =
        u32::try_from(params.concurrency + SPARE_CONNECTIONS).context("concurrency")?;
    let (mut report, caveats) = on_scratch(backend, connections, Job { params, progress }).await?;
    report.notes.extend(caveats);
    Ok(vec![report])
}

/// One soak on a scratch database.
impl OnStore for Job<'_, SoakParams> {
    type Output = Report;

    async fn run<S: Store>(self, store: S, scratch: &Scratch) -> anyhow::Result<Report> {
        run(store, scratch, self.params, self.progress).await
    }
}

async fn run<S: Store>(
    store: S,
    scratch: &Scratch,
    params: &SoakParams,
    progress: Progress,
) -> anyhow::Result<Report> {
    let tally = Tally::new();
    let recorder = RecordLag::new(tally.clone(), 1, Duration::ZERO);
    let pool = WorkerPool::builder(store.clone())
        .delivered_retention(params.retention)
        .register_with(
            recorder.clone(),
            HandlerOptions::default()
                .concurrency(params.concurrency)
                .batch_size(params.batch_size),
        )
        .build()?;
    let stop = CancellationToken::new();
    let running = tokio::spawn(pool.run(stop.clone().cancelled_owned()));
    let probe = Probe {
        store: &store,
        scratch,
        tally: &tally,
        recorder: &recorder,
    };
    let report = probe.drive(params, progress).await;
    stop.cancel();
    running.await.context("worker pool panicked")??;
    report
}

/// What the soak publishes to and samples.
struct Probe<'a, S> {
    store: &'a S,
    scratch: &'a Scratch,
    tally: &'a Tally,
    recorder: &'a RecordLag,
}

/// Running totals at the last interval boundary.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    published: u64,
    seen: u64,
}

impl<S: Store> Probe<'_, S> {
    async fn drive(&self, params: &SoakParams, progress: Progress) -> anyhow::Result<Report> {
        let bar = progress.timer("soak", params.duration);
        let started = Instant::now();
        let intervals = params.duration.as_secs_f64() / params.interval.as_secs_f64();
        let intervals = (intervals.ceil() as u32).max(1);
        let mut tick = tokio::time::interval(PUBLISH_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut published = 0;
        let mut mark = Mark {
            at: started,
            published: 0,
            seen: 0,
        };
        let mut rows = Vec::new();
        let mut rates = Vec::new();
        let mut rss = Vec::new();
        for i in 1..=intervals {
            let boundary = started + (params.interval * i).min(params.duration);
            while Instant::now() < boundary {
                tick.tick().await;
                let now = Instant::now().min(boundary);
                let due = (params.rate * (now - started).as_secs_f64()) as u64;
                published = self.publish_up_to(published, due).await?;
                bar.set((now - started).as_secs());
            }
            let (row, rate, now) = self.sample(i, started, mark, published).await?;
            bar.message(format!("interval {i}: {rate:.0}/s"));
            rates.push(rate);
            rss.push(row.get("rss_mib").and_then(serde_json::Value::as_f64));
            rows.push(row);
            mark = now;
        }
        let publishing = started.elapsed();
        let backlog = published.saturating_sub(self.tally.seen());
        let drained = self
            .tally
            .wait_for(published, params.drain_timeout, |_| {})
            .await;
        bar.finish();
        let seen = self.tally.seen();

        let mut report = Report::new(
            "soak",
            "steady",
            self.scratch.name(),
            params,
            seen,
            publishing,
        )
        .count("published", published)
        .count("backlog_at_end", backlog);
        if let (Some(first), Some(last)) = (rates.first(), rates.last()) {
            report = report
                .rate("first_interval", *first)
                .rate("last_interval", *last);
            report.checks.insert(
                "last_interval_within_10pct_of_first".into(),
                (last - first).abs() <= TOLERANCE * first,
            );
        }
        if let (Some(Some(first)), Some(Some(last))) = (rss.first(), rss.last()) {
            let allowed = (first * TOLERANCE).max(RSS_SLACK_MIB);
            report
                .checks
                .insert("rss_flat".into(), *last - *first <= allowed);
            report = report.note(format!(
                "rss {first:.1} MiB in the first interval, {last:.1} MiB in the last"
            ));
        }
        if !drained {
            report = report.note(format!(
                "{} events still unhandled {:?} after publishing ended",
                published - seen,
                params.drain_timeout
            ));
        }
        report.rows = rows;
        Ok(report)
    }

    /// Publish events `published..due`; returns the new published count.
    async fn publish_up_to(&self, mut published: u64, due: u64) -> anyhow::Result<u64> {
        while published < due {
            let end = due.min(published + MAX_PUBLISH_CHUNK);
            self.store
                .publish_batch((published..end).map(|_| Stamp::now()))
                .await
                .context("publishing")?;
            published = end;
        }
        Ok(published)
    }

    /// The row of interval `i`, its handled rate, and the mark it ends at.
    async fn sample(
        &self,
        i: u32,
        started: Instant,
        mark: Mark,
        published: u64,
    ) -> anyhow::Result<(Row, f64, Mark)> {
        let now = Mark {
            at: Instant::now(),
            published,
            seen: self.tally.seen(),
        };
        let secs = (now.at - mark.at).as_secs_f64();
        let handled = now.seen - mark.seen;
        let rate = handled as f64 / secs.max(f64::EPSILON);
        let lag = Percentiles::of(&self.recorder.take());
        let bloat = self.scratch.bloat().await?;
        let row = Row::default()
            .with("interval", i)
            .with("end_s", round2((now.at - started).as_secs_f64()))
            .with("published", now.published - mark.published)
            .with("handled", handled)
            .with("handled_per_s", rate.round())
            .with("backlog", published.saturating_sub(now.seen))
            .with("lag_p50_ms", lag.map(|l| round2(l.p50)))
            .with("lag_p99_ms", lag.map(|l| round2(l.p99)))
            .with("dead_tuples", bloat.dead)
            .with("outbox_mib", round2(bloat.size_mib))
            .with("rss_mib", current_rss_mib().map(round2));
        Ok((row, rate, now))
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
