//! `conveyor bench` smoke runs through the real binary with tiny sizes: every stdout line
//! of `--json` is one result object with the documented fields, the scratch databases are
//! gone afterwards, and a bad flag value is a usage error naming the flag. Nothing here
//! asserts a rate: the benchmarks are not timed assertions.

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use sqlx::{Connection as _, PgConnection};

const BIN: &str = env!("CARGO_BIN_EXE_conveyor-it-server");

/// The fields every result object has.
const FIELDS: [&str; 14] = [
    "workload",
    "variant",
    "backend",
    "params",
    "events",
    "elapsed_s",
    "rate",
    "counts",
    "rates",
    "latency_ms",
    "peak_rss_mib",
    "checks",
    "rows",
    "notes",
];

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

/// Run `conveyor bench <args>` with the test's Postgres server; its pid and output.
fn bench(args: &[&str]) -> (u32, Output) {
    let child = Command::new(BIN)
        .arg("bench")
        .args(args)
        .env("DATABASE_URL", admin_url())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {BIN}: {e}"));
    let pid = child.id();
    (pid, child.wait_with_output().expect("waiting for bench"))
}

/// The JSON results of a successful run, one per stdout line, each with every field.
fn results(output: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for result in &results {
        for field in FIELDS {
            assert!(result.get(field).is_some(), "no {field} in {result}");
        }
    }
    results
}

fn variants(results: &[Value]) -> Vec<(&str, &str)> {
    results
        .iter()
        .map(|r| {
            (
                r["workload"].as_str().unwrap_or_default(),
                r["variant"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

/// The throughput run's results: the ceiling first, then publish and drain, all `events`
/// long, the drain held against the `claim_delete` ceiling.
fn assert_throughput(results: &[Value], backend: &str) {
    assert_eq!(
        variants(results),
        [
            ("ceiling", "claim_delete"),
            ("ceiling", "claim_then_complete"),
            ("throughput", "publish"),
            ("throughput", "drain"),
        ]
    );
    for result in results {
        assert_eq!(result["backend"], backend, "{result}");
        assert_eq!(result["events"], 500, "{result}");
        assert!(result["rate"].as_f64().is_some_and(|r| r > 0.0), "{result}");
        assert!(result["peak_rss_mib"].as_f64().is_some(), "{result}");
    }
    let drain = &results[3];
    assert_eq!(drain["params"]["events"], 500);
    assert_eq!(drain["rates"]["ceiling"], results[0]["rate"]);
    assert!(
        drain["counts"]["vs_ceiling_pct"].as_u64().is_some(),
        "{drain}"
    );
    assert!(
        drain["checks"]["drain_at_least_70pct_of_ceiling"].is_boolean(),
        "{drain}"
    );
}

/// Scratch databases of the bench process `pid` still on the server.
async fn leftovers(pid: u32) -> i64 {
    let mut conn = PgConnection::connect(&admin_url()).await.expect("postgres");
    let count = sqlx::query_scalar(
        "select count(*) from pg_database where datname like 'conveyor\\_bench\\_%' \
         and datname like '%\\_' || $1 || '\\_%'",
    )
    .bind(pid.to_string())
    .fetch_one(&mut conn)
    .await
    .expect("listing databases");
    conn.close().await.ok();
    count
}

#[test]
fn bench_throughput_prints_json_lines_on_sqlite() {
    let (_, output) = bench(&[
        "throughput",
        "--events",
        "500",
        "--json",
        "--backend",
        "sqlite",
    ]);
    assert_throughput(&results(&output), "sqlite");
}

#[tokio::test]
async fn bench_throughput_prints_json_lines_on_postgres_and_drops_its_databases() {
    let (pid, output) = tokio::task::spawn_blocking(|| {
        bench(&[
            "throughput",
            "--events",
            "500",
            "--json",
            "--backend",
            "postgres",
        ])
    })
    .await
    .unwrap();
    assert_throughput(&results(&output), "postgres");
    assert_eq!(
        leftovers(pid).await,
        0,
        "a scratch database was left behind"
    );
}

/// `bench ingest --json` with 5 requests of 20 events on `backend`.
fn tiny_ingest(backend: &'static str) -> (u32, Output) {
    bench(&[
        "ingest",
        "--requests",
        "5",
        "--clients",
        "2",
        "--events-per-request",
        "20",
        "--json",
        "--backend",
        backend,
    ])
}

/// The ingest result: every accepted event reached `events_raw` and the rollups.
fn assert_ingest(output: &Output, backend: &str) {
    let results = results(output);
    assert_eq!(variants(&results), [("ingest", "bulk")]);
    let ingest = &results[0];
    assert_eq!(ingest["backend"], backend);
    assert_eq!(ingest["events"], 100, "{ingest}");
    assert_eq!(ingest["counts"]["status_202"], 5, "{ingest}");
    assert_eq!(ingest["counts"]["raw_stored"], 100, "{ingest}");
    assert_eq!(ingest["counts"]["rollup_total"], 100, "{ingest}");
    assert_eq!(ingest["checks"]["raw_holds_all_accepted"], true, "{ingest}");
    assert_eq!(ingest["checks"]["rollups_hold_all_accepted"], true);
    assert!(ingest["rates"]["end_to_end"].as_f64().is_some(), "{ingest}");
    assert_eq!(ingest["latency_ms"]["samples"], 5, "{ingest}");
}

#[test]
fn bench_ingest_runs_the_real_server_end_to_end_on_sqlite() {
    let (_, output) = tiny_ingest("sqlite");
    assert_ingest(&output, "sqlite");
}

#[tokio::test]
async fn bench_ingest_runs_the_real_server_end_to_end_on_postgres() {
    let (pid, output) = tokio::task::spawn_blocking(|| tiny_ingest("postgres"))
        .await
        .unwrap();
    assert_ingest(&output, "postgres");
    assert_eq!(
        leftovers(pid).await,
        0,
        "the server's database was left behind"
    );
}

/// `bench ingest --json` on Postgres with a 1 s database outage: 40 requests of 20 events.
fn tiny_outage() -> (u32, Output) {
    bench(&[
        "ingest",
        "--requests",
        "40",
        "--clients",
        "2",
        "--events-per-request",
        "20",
        "--outage-secs",
        "1",
        "--json",
        "--backend",
        "postgres",
    ])
}

#[tokio::test]
async fn bench_ingest_rides_out_a_database_outage_on_postgres() {
    let (pid, output) = tokio::task::spawn_blocking(tiny_outage).await.unwrap();
    let results = results(&output);
    assert_eq!(
        variants(&results),
        [("ingest", "bulk"), ("ingest", "outage")]
    );
    let (bulk, outage) = (&results[0], &results[1]);
    // every request got 202 and everything accepted landed once the database was back
    assert_eq!(bulk["counts"]["status_202"], 40, "{bulk}");
    assert_eq!(bulk["counts"]["failures"], 0, "{bulk}");
    assert_eq!(bulk["events"], 800, "{bulk}");
    assert_eq!(bulk["counts"]["raw_stored"], 800, "{bulk}");
    assert_eq!(bulk["checks"]["raw_holds_all_accepted"], true, "{bulk}");
    assert_eq!(bulk["checks"]["rollups_hold_all_accepted"], true, "{bulk}");
    // the outage's own figures: the responses that came while the database was cut
    assert_eq!(outage["backend"], "postgres", "{outage}");
    assert_eq!(outage["params"]["outage"], 1.0, "{outage}");
    let during = outage["counts"]["requests"].as_u64().expect("requests");
    assert!(during <= 40, "{outage}");
    assert_eq!(outage["counts"]["failures"], 0, "{outage}");
    assert_eq!(outage["counts"]["requests_ok"], during, "{outage}");
    assert_eq!(outage["events"], during * 20, "{outage}");
    if during > 0 {
        assert_eq!(outage["latency_ms"]["samples"], during, "{outage}");
    }
    assert!(
        outage["elapsed_s"].as_f64().is_some_and(|s| s >= 1.0),
        "{outage}"
    );
    assert!(
        outage["counts"]["caught_up_after_restore_ms"].is_u64(),
        "{outage}"
    );
    // the server's pool really went through the proxy that was cut
    assert!(
        outage["counts"]["proxied_connections"].as_u64() > Some(0),
        "{outage}"
    );
    assert_eq!(
        leftovers(pid).await,
        0,
        "the server's database was left behind"
    );
}

#[test]
fn bench_ingest_refuses_an_outage_on_sqlite_naming_the_flags() {
    let (_, output) = bench(&[
        "ingest",
        "--outage-secs",
        "1",
        "--backend",
        "sqlite",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--outage-secs") && stderr.contains("--backend sqlite"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn bench_refuses_a_bad_flag_value_naming_the_flag() {
    for (args, flag) in [
        (&["throughput", "--events", "0"][..], "--events"),
        (&["latency", "--rate", "fast"][..], "--rate"),
        (&["soak", "--backend", "oracle"][..], "--backend"),
        (&["ingest", "--outage-secs", "601"][..], "--outage-secs"),
    ] {
        let (_, output) = bench(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn bench_refuses_a_database_url_that_is_not_postgres() {
    let output = Command::new(BIN)
        .args(["bench", "ceiling", "--rows", "10", "--backend", "postgres"])
        .env("DATABASE_URL", "sqlite://bench.db")
        .output()
        .expect("running bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--database-url"), "{stderr}");
}
