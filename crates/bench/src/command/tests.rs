use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;

use super::*;
use crate::{CeilingParams, FifoParams, LatencyParams, SoakParams, ThroughputParams};

/// A command line with `bench` as its subcommand, as the server binary's embeds it.
#[derive(Parser)]
#[command(name = "conveyor")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Bench(Box<BenchArgs>),
}

fn bench(args: &[&str]) -> Result<BenchArgs, String> {
    let cli = Cli::try_parse_from([&["conveyor", "bench"][..], args].concat())
        .map_err(|e| e.to_string())?;
    let Command::Bench(args) = cli.command;
    Ok(*args)
}

fn json(params: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(params).expect("params serialize")
}

/// The params a parsed workload runs with, as JSON.
fn params_of(workload: &Workload) -> serde_json::Value {
    match workload {
        Workload::Ceiling(a) => json(a.params()),
        Workload::Throughput(a) => json(a.params()),
        Workload::Latency(a) => json(a.params()),
        Workload::Ingest(a) => json(a.params()),
        Workload::Soak(a) => json(a.params()),
        Workload::Fifo(a) => json(a.params(&crate::Backend::Sqlite)),
        Workload::Stats(a) => json(a.params(&crate::Backend::Sqlite)),
    }
}

#[test]
fn flag_defaults_are_the_workloads_defaults() {
    for (workload, defaults) in [
        ("ceiling", json(CeilingParams::default())),
        ("throughput", json(ThroughputParams::default())),
        ("latency", json(LatencyParams::default())),
        ("ingest", json(IngestParams::default())),
        ("soak", json(SoakParams::default())),
        (
            "fifo",
            json(FifoParams::for_backend(&crate::Backend::Sqlite)),
        ),
        (
            "stats",
            json(crate::StatsParams::for_backend(&crate::Backend::Sqlite)),
        ),
    ] {
        let parsed = bench(&[workload]).unwrap().workload;
        assert_eq!(params_of(&parsed), defaults, "{workload}");
    }
}

#[test]
fn hooks_and_item_concurrency_flags_map_to_the_params() {
    let Workload::Throughput(t) = bench(&["throughput", "--hooks"]).unwrap().workload else {
        panic!()
    };
    assert!(t.params().hooks);
    let parsed = bench(&[
        "latency",
        "--item-concurrency",
        "32",
        "--item-work-secs",
        "0.002",
    ])
    .unwrap();
    let Workload::Latency(l) = parsed.workload else {
        panic!()
    };
    let p = l.params();
    assert_eq!(p.item_concurrency, 32);
    assert_eq!(p.item_work, Duration::from_millis(2));
    let zero = bench(&["latency", "--item-concurrency", "0"]).unwrap_err();
    assert!(zero.to_string().contains("--item-concurrency"), "{zero}");
}

#[test]
fn flags_map_to_the_params_and_shared_flags_go_anywhere() {
    let args = bench(&[
        "--json",
        "soak",
        "--duration-secs",
        "120",
        "--interval-secs",
        "20",
        "--rate",
        "500.5",
        "--backend",
        "sqlite",
    ])
    .unwrap();
    assert!(args.json && !args.quiet);
    assert_eq!(args.backend, Some(BackendChoice::Sqlite));
    let Workload::Soak(soak) = args.workload else {
        panic!()
    };
    let p = soak.params();
    assert_eq!(p.duration.as_secs(), 120);
    assert_eq!(p.interval.as_secs(), 20);
    assert_eq!(p.rate, 500.5);

    let Workload::Throughput(t) = bench(&["throughput", "--events", "500", "--batch-size", "50"])
        .unwrap()
        .workload
    else {
        panic!()
    };
    let ceiling = t.ceiling_params();
    assert_eq!(
        (ceiling.rows, ceiling.batch, ceiling.connections),
        (500, 50, 4)
    );
}

#[test]
fn bad_values_are_usage_errors_naming_the_flag() {
    for (args, flag) in [
        (&["throughput", "--events", "0"][..], "--events"),
        (&["throughput", "--events", "many"][..], "--events"),
        (&["latency", "--rate=-3"][..], "--rate"),
        (&["latency", "--rate", "NaN"][..], "--rate"),
        (&["soak", "--duration-secs", "0"][..], "--duration-secs"),
        (&["soak", "--interval-secs", "1e30"][..], "--interval-secs"),
        (&["ceiling", "--backend", "mysql"][..], "--backend"),
        (&["ceiling", "--events", "5"][..], "--events"),
        (&["ingest", "--target", "https://x"][..], "--target"),
        (&["ingest", "--target", "http://x"][..], "--api-key"),
        (
            &["ingest", "--target", "http://x", "--api-key", "k"][..],
            "--operator-key",
        ),
        (&["ingest", "--api-key", "k"][..], "--target"),
        (&["ingest", "--outage-secs", "601"][..], "--outage-secs"),
        (&["ingest", "--outage-secs=-1"][..], "--outage-secs"),
        (&["ingest", "--outage-secs", "soon"][..], "--outage-secs"),
    ] {
        let err = bench(args).unwrap_err();
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn backends_default_to_both_on_the_default_server() {
    let runs = plan(&bench(&["ceiling"]).unwrap(), "").unwrap();
    let names: Vec<&str> = runs.iter().map(Run::name).collect();
    assert_eq!(names, ["postgres", "sqlite"]);
    let Run::Local(Backend::Postgres { admin_url }) = &runs[0] else {
        panic!()
    };
    assert_eq!(admin_url, DEFAULT_ADMIN_URL);

    let runs = plan(
        &bench(&["ceiling", "--backend", "postgres"]).unwrap(),
        "postgres://u@db/app",
    )
    .unwrap();
    assert!(
        matches!(&runs[..], [Run::Local(Backend::Postgres { admin_url })] if admin_url == "postgres://u@db/app")
    );
}

#[test]
fn a_sqlite_url_serves_sqlite_runs_only() {
    let sqlite = bench(&["ceiling", "--backend", "sqlite"]).unwrap();
    assert_eq!(plan(&sqlite, "sqlite://x.db").unwrap().len(), 1);
    let err = plan(&bench(&["ceiling"]).unwrap(), "sqlite://x.db").unwrap_err();
    assert!(err.to_string().contains("--database-url"), "{err}");
}

#[test]
fn a_target_takes_no_backend() {
    let target = [
        "ingest",
        "--target",
        "http://127.0.0.1:8080/",
        "--api-key",
        "k",
        "--operator-key",
        "op",
    ];
    let runs = plan(&bench(&target).unwrap(), "").unwrap();
    assert!(
        matches!(&runs[..], [Run::Remote { url, key, .. }] if url == "http://127.0.0.1:8080" && key == "k")
    );
    let err = plan(
        &bench(&[&target[..], &["--backend", "sqlite"]].concat()).unwrap(),
        "",
    )
    .unwrap_err();
    assert!(err.to_string().contains("--backend"), "{err}");
}

#[test]
fn an_outage_runs_on_postgres_only_and_never_on_a_target() {
    let args = bench(&["ingest", "--outage-secs", "5"]).unwrap();
    let Workload::Ingest(ingest) = &args.workload else {
        panic!()
    };
    assert_eq!(ingest.params().outage.as_secs(), 5);
    let runs = plan(&args, "").unwrap();
    assert_eq!(runs.iter().map(Run::name).collect::<Vec<_>>(), ["postgres"]);
    assert!(
        notes(&args)[0].contains("Postgres only"),
        "{:?}",
        notes(&args)
    );
    let postgres = bench(&["ingest", "--outage-secs", "5", "--backend", "postgres"]).unwrap();
    assert_eq!(plan(&postgres, "").unwrap().len(), 1);
    assert!(notes(&postgres).is_empty());

    let sqlite = bench(&["ingest", "--outage-secs", "5", "--backend", "sqlite"]).unwrap();
    let err = plan(&sqlite, "").unwrap_err().to_string();
    assert!(
        err.contains("--outage-secs") && err.contains("--backend sqlite"),
        "{err}"
    );

    let target = [
        "ingest",
        "--target",
        "http://127.0.0.1:8080",
        "--api-key",
        "k",
        "--operator-key",
        "op",
        "--outage-secs",
        "5",
    ];
    let err = plan(&bench(&target).unwrap(), "").unwrap_err().to_string();
    assert!(
        err.contains("--outage-secs") && err.contains("--target"),
        "{err}"
    );

    // no outage: both backends, no note
    let none = bench(&["ingest", "--outage-secs", "0"]).unwrap();
    assert_eq!(plan(&none, "").unwrap().len(), 2);
    assert!(notes(&none).is_empty());
}

fn drain(rate: f64) -> Report {
    Report {
        workload: "throughput".into(),
        variant: "drain".into(),
        backend: "postgres".into(),
        params: serde_json::Value::Null,
        events: 1000,
        elapsed_s: 1000.0 / rate,
        rate: Some(rate),
        counts: BTreeMap::new(),
        rates: BTreeMap::new(),
        latency_ms: None,
        peak_rss_mib: None,
        checks: BTreeMap::new(),
        rows: Vec::new(),
        notes: Vec::new(),
    }
}

#[test]
fn the_drain_is_held_against_the_ceiling() {
    let mut fast = drain(8_000.0);
    hold_against_ceiling(&mut fast, 10_000.0);
    assert_eq!(fast.counts["vs_ceiling_pct"], 80);
    assert_eq!(fast.rates["ceiling"], 10_000.0);
    assert!(fast.checks["drain_at_least_70pct_of_ceiling"]);
    assert!(fast.notes[0].contains("80%"), "{:?}", fast.notes);

    let mut slow = drain(6_000.0);
    hold_against_ceiling(&mut slow, 10_000.0);
    assert_eq!(slow.counts["vs_ceiling_pct"], 60);
    assert!(!slow.checks["drain_at_least_70pct_of_ceiling"]);
}

#[test]
fn no_secret_of_a_url_is_shown() {
    let ceiling = bench(&["ceiling", "--backend", "postgres"]).unwrap();
    let err = plan(&ceiling, "postgres://u@h/db?PASSWORD=s3cret").unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("--database-url") && !err.contains("s3cret"),
        "{err}"
    );
    let runs = plan(&ceiling, "postgres://u:s3cret@h/db?password=s3cret").unwrap();
    assert!(!format!("{runs:?}").contains("s3cret"), "{runs:?}");

    let args = bench(&[
        "ingest",
        "--target",
        "http://h:8080",
        "--api-key",
        "s3cret",
        "--operator-key",
        "s3cret",
    ])
    .unwrap();
    assert!(!format!("{args:?}").contains("s3cret"), "{args:?}");

    let target = [
        "ingest",
        "--target",
        "http://u:s3cret@h:8080",
        "--api-key",
        "k",
        "--operator-key",
        "op",
    ];
    let err = plan(&bench(&target).unwrap(), "").unwrap_err().to_string();
    assert!(err.contains("--target") && !err.contains("s3cret"), "{err}");
}
