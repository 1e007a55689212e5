//! The ingestion log between the API and the database: requests are acknowledged once
//! durable in it, whatever the database does; it refuses (503, `Retry-After`) rather than
//! drops when full or unable to write; and what it acknowledged always reaches the database.

use std::time::{Duration, Instant};

use conveyor_integration::{event, gzip, spawn_app, spawn_app_behind_proxy, TestApp};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{api_only_sqlite, api_with, assert_error, assert_error_says, bulk};

/// `n` events, one request.
fn request(n: usize) -> Value {
    bulk(
        (0..n)
            .map(|i| event("click", &format!("u{i}"), "web"))
            .collect(),
    )
}

/// Wait (30 s at most) until `events_raw` holds the `events` acknowledged events, then for
/// the pipeline to drain; the rollups then match the raw events.
async fn assert_all_land(app: &TestApp, events: i64) {
    app.wait_until(
        "the acknowledged events stored",
        Duration::from_secs(30),
        || async { app.db.raw_counts().await == (events, events) },
    )
    .await;
    app.wait_for_drain().await;
    app.db.assert_rollups_match_raw().await;
}

/// While the database is unreachable, requests are acknowledged from the log at once (today's
/// pool waits out its 5 s connection timeout first), and every one lands once it is back.
#[sqlx::test(migrations = false)]
async fn requests_are_acknowledged_at_once_while_the_database_is_away_and_land_after(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (app, proxy) = spawn_app_behind_proxy(pool, opts, |_| {}).await;
    proxy.cut();
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let response = app.post_events(&app.key, &request(100)).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(response.status(), 202);
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a request took {slowest:?}"
    );
    let (status, health) = app.detailed_health().await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["ingest_log"]["unpublished_events"], 500, "{health}");

    proxy.restore();
    assert_all_land(&app, 500).await;
    assert_eq!(app.unpublished().await, 0);
    app.shutdown().await;
}

/// Past its capacity the log answers 503 with `Retry-After` and drops nothing: what it
/// acknowledged lands after a restart against a reachable database.
#[sqlx::test(migrations = false)]
async fn a_full_log_answers_503_with_retry_after_and_loses_nothing(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let dir = conveyor_integration::pipeline::temp_dir("conveyor-full-log");
    let log = dir.join("log");
    let tweak = |s: &mut conveyor_server::Settings| {
        s.log.dir = log.clone();
        s.log.max_unpublished_events = 250;
    };
    let down = spawn_app(pool.clone(), opts.clone(), tweak).await;
    down.close_database().await;
    for _ in 0..2 {
        assert_eq!(
            down.post_events(&down.key, &request(100)).await.status(),
            202
        );
    }
    let refused = down.post_events(&down.key, &request(100)).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key(RETRY_AFTER));
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("full"), "{body}");
    down.shutdown().await;

    let app = spawn_app(pool, opts, tweak).await;
    assert_all_land(&app, 200).await;
    app.shutdown().await;
    std::fs::remove_dir_all(dir).ok();
}

/// When the log cannot write (here its directory is gone, so the next segment cannot be
/// created), the API answers 503 with `Retry-After`, and health says the log cannot write.
#[sqlx::test(migrations = false)]
async fn a_log_that_cannot_write_answers_503(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_with(pool, opts, |s| s.log.segment_bytes = 1).await;
    assert_eq!(app.post_events(&app.key, &request(1)).await.status(), 202);
    std::fs::remove_dir_all(&app.log_dir).unwrap();
    let response = app.post_events(&app.key, &request(1)).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key(RETRY_AFTER));
    assert_error_says(response, 503, "cannot write").await;
    let (status, health) = app.detailed_health().await;
    assert_eq!(status, 503, "{health}");
    assert!(health["ingest_log"]["write_error"].is_string(), "{health}");
    app.shutdown().await;
}

/// Attributes nested past the limit are refused with 422 up front, never acknowledged and
/// then lost (today such an event got a 202 during an outage and could not be read back).
#[tokio::test]
async fn deeply_nested_attributes_are_refused_not_acknowledged_and_lost() {
    let app = api_only_sqlite().await;
    app.close_database().await;
    let nested: Value =
        serde_json::from_str(&format!("{}{}", "[".repeat(120), "]".repeat(120))).unwrap();
    let mut deep = event("click", "u1", "web");
    deep["attributes"] = json!({ "a": nested });
    let response = app.post_events(&app.key, &bulk(vec![deep])).await;
    assert_error(response, 422, "events[0].attributes").await;
    app.shutdown().await;
}

/// A 50 MB array of zeros in one event's attributes, gzip'd to some KB, four at once: each
/// is refused (the ratio cap) and the server keeps answering. VmHWM is printed as a report.
#[sqlx::test(migrations = false)]
async fn gzip_bombs_are_refused_and_the_server_stays_up(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_with(pool, opts, |_| {}).await;
    let bomb = gzip_bomb(50 * 1024 * 1024);
    let posts = (0..4).map(|_| {
        app.bulk_request(Some(&app.key))
            .header(CONTENT_ENCODING, "gzip")
            .header(CONTENT_TYPE, "application/json")
            .body(bomb.clone())
            .send()
    });
    for response in futures::future::join_all(posts).await {
        assert_error_says(response.unwrap(), 413, "decompressed").await;
    }
    let health = app.get_without_key("/healthz").await;
    assert_eq!(health.status(), 200);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?");
    eprintln!(
        "gzip bombs ({} bytes each, 4 at once): test process {hwm}",
        bomb.len()
    );
    app.shutdown().await;
}

/// A bulk body whose one event carries `zeros` bytes of `0,` in its attributes, gzip'd as
/// concatenated members (one compressed chunk repeated), which gzip readers join.
fn gzip_bomb(zeros: usize) -> Vec<u8> {
    let chunk = "0,".repeat(512 * 1024);
    let mut body = gzip(
        br#"{"events": [{"event_type": "click", "actor_id": "u", "source": "web", "timestamp": "2026-01-01T00:00:00Z", "attributes": {"z": ["#,
    );
    let member = gzip(chunk.as_bytes());
    for _ in 0..zeros / chunk.len() {
        body.extend_from_slice(&member);
    }
    body.extend_from_slice(&gzip(b"0]}}]}"));
    body
}

/// A request with a JSON body but another declared type is a 415.
#[sqlx::test(migrations = false)]
async fn a_body_declared_as_another_type_is_415(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_with(pool, opts, |_| {}).await;
    let response = app
        .bulk_request(Some(&app.key))
        .header(CONTENT_TYPE, "text/plain")
        .body(request(1).to_string())
        .send()
        .await
        .unwrap();
    assert_error_says(response, 415, "Content-Type").await;
    app.shutdown().await;
}

/// The log's directory and files are private to the server's user.
#[cfg(unix)]
#[tokio::test]
async fn the_log_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = api_only_sqlite().await;
    assert_eq!(app.post_events(&app.key, &request(1)).await.status(), 202);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&app.log_dir), 0o700);
    for file in std::fs::read_dir(&app.log_dir).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    app.shutdown().await;
}

/// `/healthz/detailed` needs an operator key; a tenant's key is not one.
#[tokio::test]
async fn detailed_health_needs_an_operator_key() {
    let app: TestApp = api_only_sqlite().await;
    let none = app.get_without_key("/healthz/detailed").await;
    assert_eq!(none.status(), 401);
    let tenant = app.get(&app.key, "/healthz/detailed").await;
    assert_eq!(tenant.status(), 401);
    let (status, body) = app.detailed_health().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ingest_log"]["unpublished_events"], 0, "{body}");
    app.shutdown().await;
}
