//! `conveyor bench <workload>`: the command that runs a workload of this crate on each chosen
//! backend and prints its results, as a table or, with `--json`, one JSON object per line.
//! The server binary parses [`BenchArgs`] as its `bench` subcommand and calls [`run`].
//!
//! Every run makes its own scratch database and removes it at the end, also on failure and
//! on ctrl-c or SIGTERM (which cancel the running workload): on Postgres a fresh database
//! created on the server `--database-url` names and dropped `WITH (FORCE)`, on SQLite a temp
//! file. So it runs anywhere the tests run, and never touches the database `serve` uses.
//!
//! `throughput` runs `ceiling` first on the same backend, with the same rows, batch size and
//! parallelism, and holds the drain against it: the drain's result gains `rates.ceiling`
//! (the single-statement `claim_delete` rate), `counts.vs_ceiling_pct` (drain as a
//! percentage of it) and `checks.drain_at_least_70pct_of_ceiling`.
//!
//! The ingest workload's server is the one part this crate cannot build (the server crate
//! depends on this one): the binary hands [`run`] an [`InProcessIngest`] that starts it.
//! - `args`: the flags, one subcommand per workload ([`BenchArgs`]).
//! - `target`: the ingest workload against a server already running (`--target`).

mod args;
mod target;

use std::future::Future;
use std::io::Write as _;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use args::{
    BackendChoice, BenchArgs, CeilingArgs, FifoArgs, IngestArgs, LatencyArgs, SoakArgs, StatsArgs,
    ThroughputArgs, Workload,
};

use crate::{Backend, IngestParams, Progress, Report};

/// Runs the ingest workload on the real server, started in this process on a fresh database
/// of `backend`, and removes that database afterwards. The server crate implements it; this
/// crate cannot name the server's types.
pub trait InProcessIngest: Send + Sync {
    /// Drive an in-process server on `backend` with `params` until the pipeline has caught
    /// up or `interrupt` is cancelled (which stops the server before its database goes).
    ///
    /// # Errors
    /// When the database cannot be created, the server cannot start or fails while running,
    /// and when interrupted.
    fn ingest<'a>(
        &'a self,
        backend: &'a Backend,
        params: &'a IngestParams,
        progress: Progress,
        interrupt: &'a CancellationToken,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Report>>>;
}

/// The Postgres server bench runs create their databases on when neither `--database-url`
/// nor `DATABASE_URL` names one.
pub const DEFAULT_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/postgres";

/// The throughput target: the drain reaches this share of the single-statement
/// ceiling measured in the same run.
const DRAIN_VS_CEILING_TARGET: f64 = 0.70;

/// How long an interrupted `ingest` may take to stop its server and drop its database
/// before it is dropped outright.
const INGEST_STOP_GRACE: Duration = Duration::from_secs(10);

/// Where one run of the workload goes. Its `Debug` hides the key and the URL's secrets.
enum Run {
    /// A scratch database on this backend (and, for ingest, a server in this process).
    Local(Backend),
    /// `ingest --target`: a server already running at `url`, driven with `key`.
    Remote {
        url: String,
        key: String,
        operator_key: String,
    },
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Run::Local(backend) => f.debug_tuple("Local").field(backend).finish(),
            Run::Remote { url, .. } => f
                .debug_struct("Remote")
                .field("url", &crate::redact_url(url))
                .finish_non_exhaustive(),
        }
    }
}

impl Run {
    fn name(&self) -> &str {
        match self {
            Run::Local(backend) => backend.name(),
            Run::Remote { url, .. } => url,
        }
    }
}

/// Run `conveyor bench` on each backend `--backend` names, printing each backend's results
/// as soon as they are in; `shutdown` (ctrl-c or SIGTERM) cancels the running workload,
/// which removes its scratch database. `database_url` is the global `--database-url`
/// (empty: none); `server` starts the ingest workload's in-process server.
///
/// # Errors
/// A message naming the flag for a `--database-url` that is not a Postgres URL when Postgres
/// runs, `--backend` given with `--target`, or `ingest --outage-secs` with `--target` or
/// `--backend sqlite`; when a run fails (the others still run, and
/// each failure is printed); when interrupted.
pub async fn run(
    args: BenchArgs,
    database_url: &str,
    server: &dyn InProcessIngest,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let runs = plan(&args, database_url)?;
    let progress = Progress::quiet_if(args.json || args.quiet);
    let name = workload_name(&args.workload);
    let interrupt = CancellationToken::new();
    let work = async {
        let mut failed = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            match run_one(&args.workload, run, server, progress, &interrupt).await {
                Ok(mut reports) => {
                    for report in &mut reports {
                        report.notes.extend(notes(&args));
                    }
                    print(&reports, args.json, i > 0)?;
                }
                Err(_) if interrupt.is_cancelled() => break,
                Err(e) => {
                    eprintln!("error: bench {name} on {}: {e:#}", run.name());
                    failed.push(run.name().to_owned());
                }
            }
        }
        if !failed.is_empty() {
            anyhow::bail!("bench {name} failed on {}", failed.join(", "));
        }
        Ok(())
    };
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => return done,
        () = shutdown => interrupt.cancel(),
    }
    // the workloads of this crate are cancelled by dropping them, which drops their
    // scratch databases; ingest first stops the server it started on its database
    if matches!(args.workload, Workload::Ingest(_)) {
        let _ = tokio::time::timeout(INGEST_STOP_GRACE, work).await;
    }
    anyhow::bail!(
        "bench {name} interrupted: the running workload was cancelled and its scratch database removed"
    )
}

/// The runs `args` ask for, in order.
fn plan(args: &BenchArgs, database_url: &str) -> anyhow::Result<Vec<Run>> {
    if let Workload::Ingest(IngestArgs {
        target: Some(url),
        api_key: Some(key),
        operator_key: Some(operator_key),
        ..
    }) = &args.workload
    {
        if outage_secs(args) > 0 {
            anyhow::bail!(
                "--outage-secs: not with --target; the bench can cut off only the database of \
                 a server it starts itself"
            );
        }
        if args.backend.is_some() {
            anyhow::bail!(
                "--backend: not with --target; the ingest workload then drives that server, \
                 whatever its backend"
            );
        }
        if url.contains('@') {
            // reqwest's errors show the URL: the credentials would be printed
            anyhow::bail!(
                "--target: give the server's URL without credentials (no `user:password@`); \
                 the API key goes in --api-key"
            );
        }
        return Ok(vec![Run::Remote {
            url: url.clone(),
            key: key.clone(),
            operator_key: operator_key.clone(),
        }]);
    }
    let choice = args.backend.unwrap_or(BackendChoice::Both);
    let outage = outage_secs(args) > 0;
    if outage && choice == BackendChoice::Sqlite {
        anyhow::bail!(
            "--outage-secs: not with --backend sqlite; an embedded SQLite file cannot be cut \
             off from the server (use --backend postgres)"
        );
    }
    let mut runs = Vec::new();
    if matches!(choice, BackendChoice::Postgres | BackendChoice::Both) {
        runs.push(Run::Local(Backend::Postgres {
            admin_url: admin_url(database_url)?,
        }));
    }
    // with an outage, `both` is Postgres only (noted in its results)
    if !outage && matches!(choice, BackendChoice::Sqlite | BackendChoice::Both) {
        runs.push(Run::Local(Backend::Sqlite));
    }
    Ok(runs)
}

/// The `ingest --outage-secs` of `args` (0: none, or not ingest).
fn outage_secs(args: &BenchArgs) -> u64 {
    match &args.workload {
        Workload::Ingest(a) => a.outage_secs,
        _ => 0,
    }
}

/// What the results of `args` say beyond the workload's own notes.
fn notes(args: &BenchArgs) -> Vec<String> {
    if outage_secs(args) > 0 && args.backend != Some(BackendChoice::Postgres) {
        vec![
            "--outage-secs: ran on Postgres only; an embedded SQLite file cannot be cut off".into(),
        ]
    } else {
        Vec::new()
    }
}

/// The Postgres server to create scratch databases on: `--database-url`, or the default.
fn admin_url(database_url: &str) -> anyhow::Result<String> {
    let url = database_url.trim();
    if url.is_empty() {
        return Ok(DEFAULT_ADMIN_URL.to_owned());
    }
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => match crate::check_postgres_url(url) {
            Ok(()) => Ok(url.to_owned()),
            Err(e) => anyhow::bail!(
                "--database-url (DATABASE_URL) {}: {e}",
                crate::redact_url(url)
            ),
        },
        _ => anyhow::bail!(
            "--database-url (DATABASE_URL): bench needs a postgres:// URL of a server it may \
             create databases on (SQLite runs use temp files of their own); give one, or \
             --backend sqlite"
        ),
    }
}

/// The subcommand naming `workload`, for messages.
fn workload_name(workload: &Workload) -> &'static str {
    match workload {
        Workload::Ceiling(_) => "ceiling",
        Workload::Throughput(_) => "throughput",
        Workload::Latency(_) => "latency",
        Workload::Ingest(_) => "ingest",
        Workload::Soak(_) => "soak",
        Workload::Fifo(_) => "fifo",
        Workload::Stats(_) => "stats",
    }
}

/// One workload on one backend (or target), an in-process ingest on `server`. `interrupt`
/// stops an in-process ingest server gracefully; the other workloads are cancelled by
/// dropping them.
async fn run_one(
    workload: &Workload,
    run: &Run,
    server: &dyn InProcessIngest,
    progress: Progress,
    interrupt: &CancellationToken,
) -> anyhow::Result<Vec<Report>> {
    let backend = match (workload, run) {
        (
            Workload::Ingest(a),
            Run::Remote {
                url,
                key,
                operator_key,
            },
        ) => {
            return target::against(url, key, operator_key, &a.params(), progress).await;
        }
        (_, Run::Remote { .. }) => anyhow::bail!("--target: ingest only"),
        (_, Run::Local(backend)) => backend,
    };
    match workload {
        Workload::Ceiling(a) => crate::ceiling(backend, &a.params(), progress).await,
        Workload::Throughput(a) => throughput(backend, a, progress).await,
        Workload::Latency(a) => crate::latency(backend, &a.params(), progress).await,
        Workload::Ingest(a) => {
            server
                .ingest(backend, &a.params(), progress, interrupt)
                .await
        }
        Workload::Soak(a) => crate::soak(backend, &a.params(), progress).await,
        Workload::Fifo(a) => crate::fifo(backend, &a.params(backend), progress).await,
        Workload::Stats(a) => crate::stats(backend, &a.params(backend), progress).await,
    }
}

/// The ceiling, then publish and drain, the drain held against the ceiling.
async fn throughput(
    backend: &Backend,
    args: &ThroughputArgs,
    progress: Progress,
) -> anyhow::Result<Vec<Report>> {
    let mut reports = crate::ceiling(backend, &args.ceiling_params(), progress).await?;
    let mut measured = crate::throughput(backend, &args.params(), progress).await?;
    let ceiling = reports
        .iter()
        .find(|r| r.variant == "claim_delete")
        .and_then(|r| r.rate);
    if let Some(ceiling) = ceiling {
        for drain in measured.iter_mut().filter(|r| r.variant == "drain") {
            hold_against_ceiling(drain, ceiling);
        }
    }
    reports.append(&mut measured);
    Ok(reports)
}

/// Add the drain's ratio to the single-statement ceiling `ceiling` (rows/s) to `drain`.
fn hold_against_ceiling(drain: &mut Report, ceiling: f64) {
    let Some(rate) = drain.rate.filter(|_| ceiling > 0.0) else {
        return;
    };
    let ratio = rate / ceiling;
    drain.rates.insert("ceiling".into(), ceiling);
    drain
        .counts
        .insert("vs_ceiling_pct".into(), (ratio * 100.0).round() as u64);
    drain.checks.insert(
        "drain_at_least_70pct_of_ceiling".into(),
        ratio >= DRAIN_VS_CEILING_TARGET,
    );
    drain.notes.push(format!(
        "drain is {:.0}% of the single-statement ceiling (claim_delete, {ceiling:.0}/s) of this run; target ≥ {:.0}%",
        ratio * 100.0,
        DRAIN_VS_CEILING_TARGET * 100.0
    ));
}

/// Print `reports`: JSON lines, or a table (after a blank line when `spaced`).
fn print(reports: &[Report], json: bool, spaced: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        for report in reports {
            serde_json::to_writer(&mut out, report)?;
            writeln!(out)?;
        }
    } else {
        if spaced {
            writeln!(out)?;
        }
        crate::write_table(&mut out, reports)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests;
