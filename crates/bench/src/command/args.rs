//! The flags of `conveyor bench`: one subcommand per workload, each with the fields of its
//! params struct in this crate as flags (their defaults come from its `Default`
//! impls, so there is one source), plus `--backend`, `--json` and `--quiet` for all.
//!
//! The server binary embeds [`BenchArgs`] in its command line as `conveyor bench`;
//! [`run`](super::run) reads them.
//!
//! Every value is checked while parsing, so a bad one is a usage error naming the flag
//! (exit code 2), never a panic deep inside a workload.

mod fifo;
mod stats;

use std::time::Duration;

pub use fifo::FifoArgs;
pub use stats::StatsArgs;

use crate::{CeilingParams, IngestParams, LatencyParams, SoakParams, ThroughputParams};
use clap::{Args, Subcommand, ValueEnum};

/// The flags of `conveyor bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The workload to run.
    #[command(subcommand)]
    pub workload: Workload,

    /// Where to run: `postgres`, `sqlite` or `both` (Postgres first). A Postgres run connects
    /// to the server of `--database-url` (DATABASE_URL; by default
    /// postgres://root@127.0.0.1:5432/postgres) and creates and drops a database of its own;
    /// a SQLite run uses a temp file. Defaults to `both`; not with `ingest --target`.
    #[arg(long, value_enum, global = true, help_heading = "Bench")]
    pub backend: Option<BackendChoice>,

    /// Print each result as one JSON object per line on stdout instead of the table, with no
    /// progress bars. Defaults to off.
    #[arg(long, global = true, help_heading = "Bench")]
    pub json: bool,

    /// Draw no progress bars. Defaults to off: bars on stderr when it is a terminal.
    #[arg(long, global = true, help_heading = "Bench")]
    pub quiet: bool,
}

/// The `--backend` of `conveyor bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// PostgreSQL only.
    Postgres,
    /// The embedded SQLite backend only.
    Sqlite,
    /// Postgres, then SQLite.
    Both,
}

/// The workloads of `conveyor bench`.
#[derive(Debug, Clone, Subcommand)]
pub enum Workload {
    /// The raw-SQL drain ceiling, no framework: `FOR UPDATE SKIP LOCKED` claim-and-delete in
    /// one statement (`claim_delete`), and claim then complete (`claim_then_complete`).
    Ceiling(CeilingArgs),
    /// The single-statement ceiling, then bulk publish and drain of no-op events through a
    /// worker pool; the drain's result carries its ratio to that ceiling (`vs_ceiling_pct`).
    Throughput(ThroughputArgs),
    /// Publish → handler start latency on an idle pool woken by notifications.
    Latency(LatencyArgs),
    /// `POST /v1/events/bulk` load on the real server, started in this process on a fresh
    /// database (or a running one with `--target`), until the pipeline has caught up.
    Ingest(IngestArgs),
    /// A steady publish rate for a long run, interval by interval: rate, backlog, RSS, bloat.
    Soak(SoakArgs),
    /// Drain an ordered queue (ordering keys) with parked and retrying keys, against the
    /// unordered drain of as many events; counts order violations (`order_violations`).
    Fifo(FifoArgs),
    /// Full `stats()` reads over a large outbox (99% delivered or dead, many queues) while
    /// publishing at a steady rate: p50/p99 of one read.
    Stats(StatsArgs),
}

/// The flags of `conveyor bench ceiling`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Workload")]
pub struct CeilingArgs {
    /// Rows to prefill and drain. Defaults to 100000.
    #[arg(long, default_value_t = CeilingParams::default().rows, value_parser = positive_u64)]
    pub rows: u64,
    /// Concurrent draining connections (Postgres; SQLite drains on one). Defaults to 4.
    #[arg(long, default_value_t = CeilingParams::default().connections, value_parser = positive_usize)]
    pub connections: usize,
    /// Rows claimed per statement. Defaults to 100.
    #[arg(long, default_value_t = CeilingParams::default().batch, value_parser = positive_usize)]
    pub batch_size: usize,
}

/// The flags of `conveyor bench throughput`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Workload")]
pub struct ThroughputArgs {
    /// Events to publish and drain (and rows of the ceiling run first). Defaults to 100000.
    #[arg(long, default_value_t = ThroughputParams::default().events, value_parser = positive_u64)]
    pub events: u64,
    /// Events per handler batch (and rows per ceiling statement). Defaults to 100.
    #[arg(long, default_value_t = ThroughputParams::default().batch_size, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Concurrent workers (and ceiling connections). Defaults to 4.
    #[arg(long, default_value_t = ThroughputParams::default().concurrency, value_parser = positive_usize)]
    pub concurrency: usize,
    /// Events per `publish_batch` call while prefilling. Defaults to 5000.
    #[arg(long, default_value_t = ThroughputParams::default().publish_chunk, value_parser = positive_usize)]
    pub publish_chunk: usize,
    /// Also try batch sizes {50, 100, 500} × concurrency {1, 2, 4, 8} and report the best.
    /// Defaults to off.
    #[arg(long)]
    pub sweep: bool,
    /// Events per sweep configuration. Defaults to 50000.
    #[arg(long, default_value_t = ThroughputParams::default().sweep_events, value_parser = positive_u64)]
    pub sweep_events: u64,
    /// Give up on a drain after this many seconds. Defaults to 600.
    #[arg(long, default_value_t = ThroughputParams::default().timeout.as_secs_f64(), value_parser = positive_secs)]
    pub timeout_secs: f64,
    /// Seconds the pool keeps delivered events before pruning them; 0 deletes each as its
    /// batch completes. Defaults to the framework's 600.
    #[arg(long, default_value_t = ThroughputParams::default().delivered_retention.as_secs_f64(), value_parser = non_negative_secs)]
    pub delivered_retention_secs: f64,
    /// Run the drain with hooks (a sync hook counting committed events, an async hook) and
    /// the tracing middleware on, to measure their overhead. Defaults to off.
    #[arg(long)]
    pub hooks: bool,
}

/// The flags of `conveyor bench latency`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Workload")]
pub struct LatencyArgs {
    /// Events published per second, one at a time. Defaults to 100.
    #[arg(long, default_value_t = LatencyParams::default().rate, value_parser = positive_f64)]
    pub rate: f64,
    /// Seconds to publish for. Defaults to 10.
    #[arg(long, default_value_t = LatencyParams::default().duration.as_secs_f64(), value_parser = positive_secs)]
    pub duration_secs: f64,
    /// The idle workers' poll interval in seconds; long, so wake-ups are measured, not
    /// polling. Defaults to 5.
    #[arg(long, default_value_t = LatencyParams::default().poll_interval.as_secs_f64(), value_parser = positive_secs)]
    pub poll_interval_secs: f64,
    /// Concurrent workers. Defaults to 2.
    #[arg(long, default_value_t = LatencyParams::default().concurrency, value_parser = positive_usize)]
    pub concurrency: usize,
    /// The most events per batch. Defaults to 10.
    #[arg(long, default_value_t = LatencyParams::default().batch_size, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Events published and handled before measuring. Defaults to 20.
    #[arg(long, default_value_t = LatencyParams::default().warmup)]
    pub warmup: u64,
    /// Seconds to wait for the last events after publishing ends. Defaults to 10.
    #[arg(long, default_value_t = LatencyParams::default().timeout.as_secs_f64(), value_parser = positive_secs)]
    pub timeout_secs: f64,
    /// Items of one batch handled at once (`conveyor::items::for_each_concurrent`); the lag
    /// is taken as each item starts. Defaults to 1 (one after another).
    #[arg(long, default_value_t = LatencyParams::default().item_concurrency, value_parser = positive_usize)]
    pub item_concurrency: usize,
    /// Seconds of simulated I/O (a sleep) per item, after its lag is taken. Defaults to 0.
    #[arg(long, default_value_t = LatencyParams::default().item_work.as_secs_f64(), value_parser = non_negative_secs)]
    pub item_work_secs: f64,
}

/// The flags of `conveyor bench ingest`. Its `Debug` hides the API key.
#[derive(Clone, Args)]
#[command(next_help_heading = "Workload")]
pub struct IngestArgs {
    /// Concurrent clients, each sending one request at a time. Defaults to 16.
    #[arg(long, default_value_t = IngestParams::default().clients, value_parser = positive_usize)]
    pub clients: usize,
    /// Requests in all. Defaults to 1000.
    #[arg(long, default_value_t = IngestParams::default().requests, value_parser = positive_usize)]
    pub requests: usize,
    /// Events per request. Defaults to 100.
    #[arg(long, default_value_t = IngestParams::default().events_per_request, value_parser = positive_usize)]
    pub events_per_request: usize,
    /// Seconds to wait for the pipeline to catch up after the last response. Defaults to 300.
    #[arg(long, default_value_t = IngestParams::default().catch_up_timeout.as_secs_f64(), value_parser = positive_secs)]
    pub catch_up_timeout_secs: f64,
    /// Seconds one request may take before it counts as failed. Defaults to 30.
    #[arg(long, default_value_t = IngestParams::default().request_timeout.as_secs_f64(), value_parser = positive_secs)]
    pub request_timeout_secs: f64,
    /// Drive an already running server at this `http://` base URL instead of starting one;
    /// it has caught up when its `/healthz/detailed` log and backlog are empty. Defaults
    /// to none: a server in this process on a fresh database.
    #[arg(long, value_name = "URL", requires_all = ["api_key", "operator_key"], value_parser = http_url)]
    pub target: Option<String>,
    /// With `--target`: an API key of that server.
    #[arg(long, value_name = "KEY", requires = "target")]
    pub api_key: Option<String>,
    /// With `--target`: an operator key of that server (`serve --operator-key`), to read
    /// its `/healthz/detailed`.
    #[arg(long, value_name = "KEY", requires = "target")]
    pub operator_key: Option<String>,
    /// Cut the in-process server off its Postgres database for this many seconds (0 to
    /// 600), from when a tenth of the requests have been taken (or 1 s in, whichever comes
    /// first): its connections go through a loopback proxy that is cut, then restored; the
    /// responses that came meanwhile are reported apart (variant `outage`). Postgres only,
    /// not with `--target`. Defaults to 0: no outage.
    #[arg(long, value_name = "SECS", default_value_t = IngestParams::default().outage.as_secs(), value_parser = clap::value_parser!(u64).range(0..=MAX_OUTAGE_SECS))]
    pub outage_secs: u64,
}

impl std::fmt::Debug for IngestArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestArgs")
            .field("params", &self.params())
            .field("target", &self.target)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The flags of `conveyor bench soak`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Workload")]
pub struct SoakArgs {
    /// Seconds to publish for. Defaults to 600.
    #[arg(long, default_value_t = SoakParams::default().duration.as_secs_f64(), value_parser = positive_secs)]
    pub duration_secs: f64,
    /// Events published per second, steadily. Defaults to 2000.
    #[arg(long, default_value_t = SoakParams::default().rate, value_parser = positive_f64)]
    pub rate: f64,
    /// Seconds per reported interval. Defaults to 60.
    #[arg(long, default_value_t = SoakParams::default().interval.as_secs_f64(), value_parser = positive_secs)]
    pub interval_secs: f64,
    /// Concurrent workers. Defaults to 4.
    #[arg(long, default_value_t = SoakParams::default().concurrency, value_parser = positive_usize)]
    pub concurrency: usize,
    /// The most events per batch. Defaults to 100.
    #[arg(long, default_value_t = SoakParams::default().batch_size, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Seconds delivered events are kept before the pruner deletes them. Defaults to 60.
    #[arg(long, default_value_t = SoakParams::default().retention.as_secs_f64(), value_parser = positive_secs)]
    pub retention_secs: f64,
    /// Seconds to wait for the backlog to drain after publishing ends. Defaults to 60.
    #[arg(long, default_value_t = SoakParams::default().drain_timeout.as_secs_f64(), value_parser = positive_secs)]
    pub drain_timeout_secs: f64,
}

impl CeilingArgs {
    /// The workload's parameters.
    pub fn params(&self) -> CeilingParams {
        CeilingParams {
            rows: self.rows,
            connections: self.connections,
            batch: self.batch_size,
        }
    }
}

impl ThroughputArgs {
    /// The workload's parameters.
    pub fn params(&self) -> ThroughputParams {
        ThroughputParams {
            events: self.events,
            batch_size: self.batch_size,
            concurrency: self.concurrency,
            publish_chunk: self.publish_chunk,
            sweep: self.sweep,
            sweep_events: self.sweep_events,
            timeout: secs(self.timeout_secs),
            delivered_retention: secs(self.delivered_retention_secs),
            hooks: self.hooks,
        }
    }

    /// The ceiling the drain is held against: the same rows, batch and parallelism.
    pub fn ceiling_params(&self) -> CeilingParams {
        CeilingParams {
            rows: self.events,
            connections: self.concurrency,
            batch: self.batch_size,
        }
    }
}

impl LatencyArgs {
    /// The workload's parameters.
    pub fn params(&self) -> LatencyParams {
        LatencyParams {
            rate: self.rate,
            duration: secs(self.duration_secs),
            poll_interval: secs(self.poll_interval_secs),
            concurrency: self.concurrency,
            batch_size: self.batch_size,
            warmup: self.warmup,
            timeout: secs(self.timeout_secs),
            item_concurrency: self.item_concurrency,
            item_work: secs(self.item_work_secs),
        }
    }
}

impl IngestArgs {
    /// The workload's parameters.
    pub fn params(&self) -> IngestParams {
        IngestParams {
            clients: self.clients,
            requests: self.requests,
            events_per_request: self.events_per_request,
            catch_up_timeout: secs(self.catch_up_timeout_secs),
            request_timeout: secs(self.request_timeout_secs),
            outage: Duration::from_secs(self.outage_secs),
        }
    }
}

impl SoakArgs {
    /// The workload's parameters.
    pub fn params(&self) -> SoakParams {
        SoakParams {
            duration: secs(self.duration_secs),
            rate: self.rate,
            interval: secs(self.interval_secs),
            concurrency: self.concurrency,
            batch_size: self.batch_size,
            retention: secs(self.retention_secs),
            drain_timeout: secs(self.drain_timeout_secs),
        }
    }
}

/// The longest `ingest --outage-secs`: ten minutes.
const MAX_OUTAGE_SECS: u64 = 600;

/// The most seconds a duration flag takes: a year, far below `Duration`'s limit.
const MAX_SECS: f64 = 366.0 * 86_400.0;

/// Seconds already checked by [`positive_secs`] as a [`Duration`].
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.clamp(0.0, MAX_SECS)).unwrap_or(Duration::ZERO)
}

fn positive_u64(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_usize(s: &str) -> Result<usize, String> {
    positive_u64(s).and_then(|n| usize::try_from(n).map_err(|e| e.to_string()))
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be a number above zero".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_secs(s: &str) -> Result<f64, String> {
    positive_f64(s).and_then(|_| non_negative_secs(s))
}

fn non_negative_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=MAX_SECS).contains(&v) => Ok(v),
        Ok(_) => Err(format!("must be 0 to {MAX_SECS} seconds (a year)")),
        Err(e) => Err(e.to_string()),
    }
}

fn http_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .ok_or_else(|| "must be an http:// URL, such as http://127.0.0.1:8080".to_owned())?;
    if rest.trim_end_matches('/').is_empty() {
        return Err("names no host".into());
    }
    Ok(s.trim_end_matches('/').to_owned())
}
