//! `conveyor bench <workload>`: the command ([`run`], its flags [`BenchArgs`]) and its
//! workloads. Each workload is one async function taking a [`Backend`] (or, for ingest, a
//! server URL), its params struct and a [`Progress`] mode, and returning [`Report`]s. The
//! command prints them as a table ([`write_table`]), or, with `--json`, one
//! `serde_json::to_string(&report)` per line. The server binary embeds [`BenchArgs`] as its
//! `bench` subcommand and supplies the one thing this crate cannot build, the real server
//! for the in-process ingest workload ([`InProcessIngest`]).
//!
//! Every run creates its own scratch database (a fresh Postgres database, or a temp SQLite
//! file) and removes it afterwards, also on failure, so it runs anywhere the tests run.
//!
//! # Example
//! ```no_run
//! use conveyor_bench::{throughput, Backend, Progress, ThroughputParams};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let backend = Backend::Postgres { admin_url: "postgres://root@127.0.0.1:5432/postgres".into() };
//! let reports = throughput(&backend, &ThroughputParams::default(), Progress::Auto).await?;
//! conveyor_bench::print_table(&reports)?;
//! for report in &reports {
//!     println!("{}", serde_json::to_string(report)?);
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `command` — [`run`], [`BenchArgs`]: the `conveyor bench` command itself (its flags, the
//!   runs it plans, its output); the server binary embeds the flags and hands it the
//!   ingest workload's in-process server ([`InProcessIngest`]).
//! - `ceiling` — [`ceiling`]: the raw-SQL `SKIP LOCKED` drain, no framework.
//! - `throughput` — [`throughput`]: publish then drain no-op events through a `WorkerPool`.
//! - `latency` — [`latency`]: publish → handler start on an idle pool.
//! - `ingest` — [`ingest`], [`ingest_with_outage`]: the HTTP bulk-ingest driver.
//! - `proxy` — [`TcpProxy`]: a loopback forwarder the ingest outage cuts.
//! - `soak` — [`soak`]: a steady rate for a long run, interval by interval.
//! - `fifo` — [`fifo`]: the ordered (ordering keys) drain with parked and retrying keys,
//!   against the unordered drain, counting order violations.
//! - `stats` — [`stats`]: full `stats()` reads over a large outbox while publishing.
//! - `report` — [`Report`], [`Percentiles`], [`Row`], [`print_table`].
//! - `backend` — [`Backend`] and the scratch databases it creates and removes.
//! - `scratch_database` — [`ScratchDatabase`]: a fresh Postgres database, always dropped.
//! - `probe` — the payloads and handlers the framework workloads drive.
//! - `progress` — [`Progress`]: bars on stderr.
//! - `redact` — [`redact_url`]: database URLs without their secrets, for messages.
//! - `rss` — process memory from `/proc/self/status`.

mod backend;
mod ceiling;
mod command;
mod fifo;
mod ingest;
mod latency;
mod probe;
mod progress;
mod proxy;
mod redact;
mod report;
mod rss;
mod scratch_database;
mod soak;
mod stats;
mod throughput;

pub use backend::Backend;
pub use ceiling::{ceiling, CeilingParams};
pub use command::{
    run, BackendChoice, BenchArgs, CeilingArgs, FifoArgs, InProcessIngest, IngestArgs, LatencyArgs,
    SoakArgs, StatsArgs, ThroughputArgs, Workload, DEFAULT_ADMIN_URL,
};
pub use fifo::{fifo, FifoParams};
pub use ingest::{ingest, ingest_with_outage, IngestParams};
pub use latency::{latency, LatencyParams};
pub use progress::Progress;
pub use proxy::TcpProxy;
pub use redact::{check_postgres_url, redact_url};
pub use report::{print_table, write_table, Percentiles, Report, Row};
pub use rss::{current_rss_mib, peak_rss_mib};
pub use scratch_database::ScratchDatabase;
pub use soak::{soak, SoakParams};
pub use stats::{stats, StatsParams};
pub use throughput::{throughput, ThroughputParams};
