//! Every database workload with tiny parameters, against the real Postgres (`DATABASE_URL`)
//! and SQLite: the reports are well formed and no scratch database is left behind.

mod support;

use std::time::Duration;

use std::sync::Arc;

use conveyor_bench::{
    ceiling, fifo, ingest, ingest_with_outage, latency, soak, stats, throughput, Backend,
    CeilingParams, FifoParams, IngestParams, LatencyParams, Progress, Report, SoakParams,
    StatsParams, TcpProxy, ThroughputParams,
};
use futures::FutureExt as _;
use sqlx::{Connection as _, PgConnection};
use support::assert_well_formed;
use tokio::sync::{Mutex, MutexGuard};

/// Postgres runs one at a time, so counting this process's scratch databases is exact.
static POSTGRES: Mutex<()> = Mutex::const_new(());

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

/// Postgres, with this process's scratch databases counted before the test.
struct Pg {
    backend: Backend,
    before: i64,
    _serial: MutexGuard<'static, ()>,
}

impl Pg {
    async fn start() -> Pg {
        let serial = POSTGRES.lock().await;
        let before = scratch_databases().await;
        Pg {
            backend: Backend::Postgres {
                admin_url: admin_url(),
            },
            before,
            _serial: serial,
        }
    }

    /// Assert that the test left no scratch database behind.
    async fn assert_cleaned_up(&self) {
        assert_eq!(
            scratch_databases().await,
            self.before,
            "scratch database left behind"
        );
    }
}

/// This process's `conveyor_bench_<pid>_*` databases.
async fn scratch_databases() -> i64 {
    let mut conn = PgConnection::connect(&admin_url()).await.expect("postgres");
    let pattern = format!("conveyor\\_bench\\_{}\\_%", std::process::id());
    sqlx::query_scalar("select count(*) from pg_database where datname like $1")
        .bind(pattern)
        .fetch_one(&mut conn)
        .await
        .expect("count databases")
}

/// Two tests of one workload check: `$postgres` runs `$check` on a scratch Postgres database
/// (and asserts none is left behind), `$sqlite` runs it on SQLite.
macro_rules! on_each_backend {
    ($check:ident: $postgres:ident, $sqlite:ident) => {
        #[tokio::test]
        async fn $postgres() {
            let pg = Pg::start().await;
            $check(&pg.backend).await;
            pg.assert_cleaned_up().await;
        }

        #[tokio::test]
        async fn $sqlite() {
            $check(&Backend::Sqlite).await;
        }
    };
}

/// The reports are `variants`, in order, each well formed and over `events` events.
fn assert_variants(
    reports: &[Report],
    workload: &str,
    variants: &[&str],
    backend: &Backend,
    events: u64,
) {
    let got: Vec<&str> = reports.iter().map(|r| r.variant.as_str()).collect();
    assert_eq!(got, variants);
    for report in reports {
        assert_well_formed(report, workload, backend.name());
        assert_eq!(report.events, events, "{report:?}");
    }
}

/// The single report of a latency or soak run, checked well formed.
fn the_one_report<'a>(reports: &'a [Report], workload: &str, backend: &Backend) -> &'a Report {
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_well_formed(&reports[0], workload, backend.name());
    &reports[0]
}

/// The command may spawn a workload or select over it: every workload future is `Send`.
#[test]
fn workload_futures_are_send() {
    fn send<T: Send>(_: T) {}
    let backend = Backend::Sqlite;
    send(ceiling(
        &backend,
        &CeilingParams::default(),
        Progress::Hidden,
    ));
    send(throughput(
        &backend,
        &ThroughputParams::default(),
        Progress::Hidden,
    ));
    send(latency(
        &backend,
        &LatencyParams::default(),
        Progress::Hidden,
    ));
    send(soak(&backend, &SoakParams::default(), Progress::Hidden));
    send(fifo(&backend, &FifoParams::default(), Progress::Hidden));
    let probe = |_| async { anyhow::Ok(true) }.boxed();
    send(ingest(
        &IngestParams::default(),
        "http://127.0.0.1:1",
        "k",
        probe,
        Progress::Hidden,
    ));
    let proxy: Option<Arc<TcpProxy>> = None;
    if let Some(proxy) = proxy {
        send(ingest_with_outage(
            &IngestParams::default(),
            "http://127.0.0.1:1",
            "k",
            probe,
            proxy,
            Progress::Hidden,
        ));
    }
}

/// An outage takes the proxy it cuts, and the proxy a length.
#[tokio::test]
async fn an_ingest_outage_needs_its_proxy_and_a_length() {
    let probe = |_| async { anyhow::Ok(true) }.boxed();
    let outage = IngestParams {
        outage: Duration::from_secs(1),
        ..Default::default()
    };
    let err = ingest(&outage, "http://127.0.0.1:1", "k", probe, Progress::Hidden)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ingest_with_outage"), "{err}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let proxy = TcpProxy::start(listener.local_addr().expect("addr"))
        .await
        .expect("proxy");
    let err = ingest_with_outage(
        &IngestParams::default(),
        "http://127.0.0.1:1",
        "k",
        probe,
        Arc::new(proxy),
        Progress::Hidden,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("length"), "{err}");
}

fn tiny_ceiling() -> CeilingParams {
    CeilingParams {
        rows: 2_000,
        connections: 2,
        batch: 50,
    }
}

async fn ceiling_drains_every_row(backend: &Backend) {
    let reports = ceiling(backend, &tiny_ceiling(), Progress::Hidden)
        .await
        .expect("ceiling");
    let variants = ["claim_delete", "claim_then_complete"];
    assert_variants(&reports, "ceiling", &variants, backend, 2_000);
}

on_each_backend!(ceiling_drains_every_row:
    ceiling_drains_every_row_on_postgres, ceiling_drains_every_row_on_sqlite);

fn tiny_throughput() -> ThroughputParams {
    ThroughputParams {
        events: 2_000,
        publish_chunk: 500,
        timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

async fn throughput_publishes_and_drains_every_event(backend: &Backend) {
    let reports = throughput(backend, &tiny_throughput(), Progress::Hidden)
        .await
        .expect("throughput");
    assert_variants(
        &reports,
        "throughput",
        &["publish", "drain"],
        backend,
        2_000,
    );
}

on_each_backend!(throughput_publishes_and_drains_every_event:
    throughput_publishes_and_drains_every_event_on_postgres,
    throughput_publishes_and_drains_every_event_on_sqlite);

/// `--hooks`: the drain runs with hooks and the tracing middleware, and fails unless the
/// after-commit hook counted every event.
#[tokio::test]
async fn throughput_with_hooks_counts_every_event_committed() {
    let params = ThroughputParams {
        hooks: true,
        ..tiny_throughput()
    };
    let reports = throughput(&Backend::Sqlite, &params, Progress::Hidden)
        .await
        .expect("throughput with hooks");
    assert_variants(
        &reports,
        "throughput",
        &["publish", "drain"],
        &Backend::Sqlite,
        2_000,
    );
}

#[tokio::test]
async fn throughput_sweep_reports_every_configuration_and_the_best() {
    let params = ThroughputParams {
        events: 500,
        sweep: true,
        sweep_events: 300,
        ..tiny_throughput()
    };
    let reports = throughput(&Backend::Sqlite, &params, Progress::Hidden)
        .await
        .expect("throughput");
    let sweep = reports
        .iter()
        .find(|r| r.variant == "sweep")
        .expect("a sweep report");
    assert_well_formed(sweep, "throughput", "sqlite");
    assert_eq!(sweep.rows.len(), 12);
    let best = sweep
        .rows
        .iter()
        .filter_map(|row| row.get("drain_per_s")?.as_f64())
        .fold(0.0, f64::max);
    assert!(
        (sweep.rate.expect("rate").round() - best).abs() <= 1.0,
        "{sweep:?}"
    );
    assert!(
        sweep.counts.contains_key("best_batch_size")
            && sweep.counts.contains_key("best_concurrency")
    );
}

#[tokio::test]
async fn failed_run_still_drops_its_database() {
    let pg = Pg::start().await;
    let params = ThroughputParams {
        events: 50_000,
        timeout: Duration::from_millis(1),
        ..tiny_throughput()
    };
    let result = throughput(&pg.backend, &params, Progress::Hidden).await;
    assert!(result.is_err(), "a 1 ms drain timeout must fail");
    pg.assert_cleaned_up().await;
}

#[tokio::test]
async fn cancelled_run_still_drops_its_database() {
    let pg = Pg::start().await;
    let params = ThroughputParams {
        events: 1_000_000,
        ..tiny_throughput()
    };
    let run = throughput(&pg.backend, &params, Progress::Hidden);
    let cancelled = tokio::time::timeout(Duration::from_millis(500), run).await;
    assert!(
        cancelled.is_err(),
        "a million events take longer than 500 ms"
    );
    pg.assert_cleaned_up().await;
}

#[tokio::test]
async fn a_killed_runs_database_is_swept_by_the_next_run() {
    let pg = Pg::start().await;
    // no process has this pid: pids stay below 2^22 on Linux
    let stale = format!("conveyor_bench_{}_{:08x}", 999_999_999, fastrand::u32(..));
    let mut conn = PgConnection::connect(&admin_url()).await.expect("postgres");
    sqlx::query(&format!("create database \"{stale}\""))
        .execute(&mut conn)
        .await
        .expect("create the stale database");
    ceiling(&pg.backend, &tiny_ceiling(), Progress::Hidden)
        .await
        .expect("ceiling");
    let left: i64 = sqlx::query_scalar("select count(*) from pg_database where datname = $1")
        .bind(&stale)
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 0, "{stale} was not swept");
    pg.assert_cleaned_up().await;
}

async fn latency_percentiles_are_ordered(backend: &Backend) {
    let tiny = LatencyParams {
        rate: 50.0,
        duration: Duration::from_millis(400),
        warmup: 5,
        ..Default::default()
    };
    let reports = latency(backend, &tiny, Progress::Hidden)
        .await
        .expect("latency");
    let report = the_one_report(&reports, "latency", backend);
    assert_eq!(report.events, 20);
    let p = report.latency_ms.expect("percentiles");
    assert_eq!(p.samples, 20, "{report:?}");
    // a wake-up, not the 5 s poll
    assert!(p.p99 < 1_000.0, "{p:?}");
}

on_each_backend!(latency_percentiles_are_ordered:
    latency_percentiles_are_ordered_on_postgres, latency_percentiles_are_ordered_on_sqlite);

/// `--item-concurrency` with `--item-work-secs`: every item's lag is sampled as it starts,
/// and with the items of a batch at once none waits for another's work.
#[tokio::test]
async fn latency_with_item_concurrency_samples_every_item() {
    let tiny = LatencyParams {
        rate: 100.0,
        duration: Duration::from_millis(400),
        warmup: 5,
        batch_size: 8,
        concurrency: 1,
        item_concurrency: 8,
        item_work: Duration::from_millis(20),
        ..Default::default()
    };
    let reports = latency(&Backend::Sqlite, &tiny, Progress::Hidden)
        .await
        .expect("latency");
    let report = the_one_report(&reports, "latency", &Backend::Sqlite);
    let p = report.latency_ms.expect("percentiles");
    assert_eq!(p.samples, 40, "{report:?}");
}

/// On Postgres also: the server's autovacuum setting is called out, since it decides the
/// dead tuples.
async fn soak_reports_one_row_per_interval(backend: &Backend) {
    let tiny = SoakParams {
        duration: Duration::from_secs(3),
        interval: Duration::from_secs(1),
        rate: 200.0,
        drain_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let reports = soak(backend, &tiny, Progress::Hidden).await.expect("soak");
    let report = the_one_report(&reports, "soak", backend);
    assert_eq!(report.rows.len(), 3, "{report:?}");
    assert_eq!(
        Some(&report.events),
        report.counts.get("published"),
        "{report:?}"
    );
    assert!(report.events >= 550, "{report:?}");
    for row in &report.rows {
        for column in [
            "interval",
            "handled",
            "handled_per_s",
            "dead_tuples",
            "rss_mib",
            "lag_p99_ms",
        ] {
            assert!(row.get(column).is_some(), "missing {column}: {row:?}");
        }
    }
    assert!(
        report.rates.contains_key("first_interval") && report.rates.contains_key("last_interval")
    );
    assert!(report
        .checks
        .contains_key("last_interval_within_10pct_of_first"));
    assert!(report.checks.contains_key("rss_flat"));
    if matches!(backend, Backend::Postgres { .. }) {
        let mut conn = PgConnection::connect(&admin_url()).await.expect("postgres");
        let autovacuum: String = sqlx::query_scalar("select current_setting('autovacuum')")
            .fetch_one(&mut conn)
            .await
            .expect("setting");
        let noted = report.notes.iter().any(|n| n.contains("autovacuum = off"));
        assert_eq!(noted, autovacuum == "off", "{:?}", report.notes);
    }
}

on_each_backend!(soak_reports_one_row_per_interval:
    soak_reports_one_row_per_interval_on_postgres, soak_reports_one_row_per_interval_on_sqlite);

/// 3,000 events over 300 keys: 30 parked, 10 retrying, a limit of 20 in flight.
fn tiny_fifo() -> FifoParams {
    FifoParams {
        parked_keys: 30,
        retrying_keys: 10,
        batch_size: 20,
        publish_chunk: 500,
        max_in_flight: Some(20),
        timeout: Duration::from_secs(60),
        ..FifoParams::with_sizes(3_000, 300)
    }
}

/// Every flowing key's events run in order, one at a time; the parked and retrying keys'
/// other events never run; the limited drain keeps within its limit.
async fn fifo_keeps_order_and_holds_the_parked_keys(backend: &Backend) {
    let reports = fifo(backend, &tiny_fifo(), Progress::Hidden)
        .await
        .expect("fifo");
    // 40 held keys of 10 events each stay out
    assert_variants(
        &reports,
        "fifo",
        &["unordered", "ordered", "limited"],
        backend,
        2_600,
    );
    for report in &reports[1..] {
        let count = |name: &str| report.counts.get(name).copied();
        assert_eq!(count("order_violations"), Some(0), "{report:?}");
        assert_eq!(count("blocked_ran"), Some(0), "{report:?}");
        assert_eq!(count("parked_keys"), Some(30), "{report:?}");
        assert_eq!(count("dead"), Some(30), "{report:?}");
        // the parked keys' 9 others each, and the retrying keys' heads and their 9 others
        assert_eq!(count("held_pending"), Some(30 * 9 + 10 * 10), "{report:?}");
        assert_eq!(report.checks.get("held_keys_stayed_held"), Some(&true));
        assert!(report.counts.contains_key("vs_unordered_pct"), "{report:?}");
    }
    let limited = &reports[2];
    assert!(limited.counts["max_in_flight_seen"] <= 20, "{limited:?}");
    assert_eq!(limited.checks.get("in_flight_within_limit"), Some(&true));
}

on_each_backend!(fifo_keeps_order_and_holds_the_parked_keys:
    fifo_keeps_order_and_holds_the_parked_keys_on_postgres,
    fifo_keeps_order_and_holds_the_parked_keys_on_sqlite);

/// Sizes that cannot run are refused naming the flag.
#[tokio::test]
async fn fifo_refuses_sizes_naming_the_flag() {
    for (params, flag) in [
        (FifoParams::with_sizes(10, 20), "--keys"),
        (
            FifoParams {
                parked_keys: 5,
                retrying_keys: 5,
                ..FifoParams::with_sizes(100, 10)
            },
            "--parked-keys",
        ),
    ] {
        let err = fifo(&Backend::Sqlite, &params, Progress::Hidden)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(flag), "{err}");
    }
}

/// 20,000 rows over 50 queues, read for a second while publishing 500 events/s: the reads
/// are timed and the counters match the fill (1% pending, 1% dead, the rest delivered);
/// with `spread` the publishes land in the filled queues, on top of their pending rows.
async fn stats_reads_the_counters_of_the_fill(backend: &Backend) {
    for spread in [false, true] {
        let params = StatsParams {
            rows: 20_000,
            queues: 50,
            rate: 500.0,
            duration: Duration::from_secs(1),
            spread,
        };
        let reports = stats(backend, &params, Progress::Hidden)
            .await
            .expect("stats");
        let report = the_one_report(&reports, "stats", backend);
        assert!(
            report.latency_ms.is_some_and(|p| p.samples > 0),
            "{report:?}"
        );
        let count = |name: &str| report.counts.get(name).copied().unwrap_or(0);
        assert_eq!(count("queues"), 50, "{report:?}");
        assert_eq!(
            (count("delivered"), count("dead")),
            (19_600, 200),
            "{report:?}"
        );
        let published = count("published");
        assert!(published > 0, "{report:?}");
        if spread {
            let pending = count("pending");
            assert!(pending > 200 && pending <= 200 + published, "{report:?}");
        } else {
            assert_eq!(count("pending"), 200, "{report:?}");
        }
    }
}

on_each_backend!(stats_reads_the_counters_of_the_fill:
    stats_reads_the_counters_of_the_fill_on_postgres,
    stats_reads_the_counters_of_the_fill_on_sqlite);
