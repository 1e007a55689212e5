//! Run one workload of `conveyor-bench` from the command line, until `conveyor bench` has
//! it:
//!
//! ```text
//! cargo run --release -p conveyor-bench --example bench -- <workload> <postgres|sqlite> [key=value ...] [--json]
//! cargo run --release -p conveyor-bench --example bench -- throughput postgres events=100000 sweep=true
//! cargo run --release -p conveyor-bench --example bench -- soak sqlite duration=120 interval=20
//! ```
//! Workloads: ceiling, throughput, latency, soak (ingest needs a server: see the library
//! docs). Keys are the params structs' field names; durations are in seconds. Postgres uses
//! `BENCH_DATABASE_URL`, else `postgres://root@127.0.0.1:5432/postgres`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use conveyor_bench::{
    Backend, CeilingParams, LatencyParams, Progress, Report, SoakParams, ThroughputParams,
};

/// `key=value` arguments, consumed as they are read so leftovers can be reported.
struct Args(HashMap<String, String>);

impl Args {
    fn set<T: FromStr>(&mut self, key: &str, field: &mut T) -> anyhow::Result<()>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        if let Some(v) = self.0.remove(key) {
            *field = v.parse().with_context(|| format!("{key}={v}"))?;
        }
        Ok(())
    }

    fn secs(&mut self, key: &str, field: &mut Duration) -> anyhow::Result<()> {
        let mut s = field.as_secs_f64();
        self.set(key, &mut s)?;
        *field = Duration::from_secs_f64(s);
        Ok(())
    }
}

/// A workload with its parameters.
enum Job {
    Ceiling(CeilingParams),
    Throughput(ThroughputParams),
    Latency(LatencyParams),
    Soak(SoakParams),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let json = argv.iter().any(|a| a == "--json");
    argv.retain(|a| a != "--json");
    let [workload, backend, rest @ ..] = argv.as_slice() else {
        anyhow::bail!("usage: bench <ceiling|throughput|latency|soak> <postgres|sqlite> [key=value ...] [--json]");
    };
    let backend = match backend.as_str() {
        "postgres" => Backend::Postgres {
            admin_url: std::env::var("BENCH_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into()),
        },
        "sqlite" => Backend::Sqlite,
        other => anyhow::bail!("backend must be postgres or sqlite, not {other}"),
    };
    let mut args = Args(
        rest.iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect::<Option<_>>()
            .context("arguments are key=value")?,
    );
    let progress = Progress::quiet_if(json);
    let job = match workload.as_str() {
        "ceiling" => {
            let mut p = CeilingParams::default();
            args.set("rows", &mut p.rows)?;
            args.set("connections", &mut p.connections)?;
            args.set("batch", &mut p.batch)?;
            Job::Ceiling(p)
        }
        "throughput" => {
            let mut p = ThroughputParams::default();
            args.set("events", &mut p.events)?;
            args.set("batch_size", &mut p.batch_size)?;
            args.set("concurrency", &mut p.concurrency)?;
            args.set("publish_chunk", &mut p.publish_chunk)?;
            args.set("sweep", &mut p.sweep)?;
            args.set("sweep_events", &mut p.sweep_events)?;
            args.secs("delivered_retention", &mut p.delivered_retention)?;
            Job::Throughput(p)
        }
        "latency" => {
            let mut p = LatencyParams::default();
            args.set("rate", &mut p.rate)?;
            args.secs("duration", &mut p.duration)?;
            args.secs("poll_interval", &mut p.poll_interval)?;
            args.set("concurrency", &mut p.concurrency)?;
            args.set("batch_size", &mut p.batch_size)?;
            Job::Latency(p)
        }
        "soak" => {
            let mut p = SoakParams::default();
            args.secs("duration", &mut p.duration)?;
            args.set("rate", &mut p.rate)?;
            args.secs("interval", &mut p.interval)?;
            args.set("concurrency", &mut p.concurrency)?;
            args.set("batch_size", &mut p.batch_size)?;
            args.secs("retention", &mut p.retention)?;
            Job::Soak(p)
        }
        other => anyhow::bail!("unknown workload {other}"),
    };
    anyhow::ensure!(
        args.0.is_empty(),
        "unknown keys: {:?}",
        args.0.keys().collect::<Vec<_>>()
    );
    let reports: Vec<Report> = match job {
        Job::Ceiling(p) => conveyor_bench::ceiling(&backend, &p, progress).await?,
        Job::Throughput(p) => conveyor_bench::throughput(&backend, &p, progress).await?,
        Job::Latency(p) => conveyor_bench::latency(&backend, &p, progress).await?,
        Job::Soak(p) => conveyor_bench::soak(&backend, &p, progress).await?,
    };
    if json {
        for report in &reports {
            println!("{}", serde_json::to_string(report)?);
        }
    } else {
        conveyor_bench::print_table(&reports)?;
    }
    Ok(())
}
