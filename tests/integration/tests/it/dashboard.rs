//! The dashboard at `/`, in a real headless Chromium driven over WebDriver, against the
//! real server: sign in with the operator key, live counts that follow published events,
//! pause/resume, a dead letter's error history and its replay until delivered, and a tenant
//! key's read-only view without a single mutating control. A screenshot is saved under
//! `target/test-artifacts/dashboard.png`.
//!
//! Needs `chromium` and `chromedriver` (scripts/ensure-chromium.sh installs them; scripts/test.sh
//! runs it first): without them the test fails and says so.

mod browser;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conveyor::{Message, PgStore, Store as _};
use conveyor_handlers::{EmbedError, Embedder, HashingEmbedder};
use conveyor_integration::pipeline::{bulk, event};
use conveyor_integration::{spawn_app, spawn_default_app, Ping, TestApp, TENANT_A};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use browser::{Browser, Chromedriver};

const DRAIN: Duration = Duration::from_secs(60);

/// The default embedder, failing while `down` is set (a model service that is down, then back).
#[derive(Debug)]
struct SwitchableEmbedder {
    down: Arc<AtomicBool>,
    inner: HashingEmbedder,
}

#[async_trait::async_trait]
impl Embedder for SwitchableEmbedder {
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(EmbedError("embedding service unreachable".into()));
        }
        self.inner.embed(texts).await
    }
}

/// A JS expression: the `data-value` of the `field` cell of `queue`'s row (null if absent).
fn cell(queue: &str, field: &str) -> String {
    format!(
        "document.querySelector('#queues tr[data-queue=\"{queue}\"] td[data-field=\"{field}\"]')\
         ?.dataset.value ?? null"
    )
}

/// The QueueStats of `queue` ("event_type:routing_key") in `GET /v1/queues`, as the
/// operator (null when it has no row).
async fn api_queue(app: &TestApp, queue: &str) -> Value {
    let (event_type, routing_key) = queue.split_once(':').expect("event_type:routing_key");
    let mut body = app.get_json(&app.operator_key, "/v1/queues").await;
    let queues = body["queues"].as_array_mut().expect("queues");
    let found = queues.iter_mut().find(|q| {
        q["queue"]["event_type"] == event_type
            && q["queue"]["routing_key"].as_str().unwrap_or("") == routing_key
    });
    found.map(Value::take).unwrap_or_default()
}

/// The count `field` of `queue` in `GET /v1/queues` (0 when the queue has no row).
async fn api_count(app: &TestApp, queue: &str, field: &str) -> i64 {
    api_queue(app, queue).await[field].as_i64().unwrap_or(0)
}

/// Post `requests` bulk requests of 10 events each as tenant A, and wait until they settle.
async fn publish(app: &TestApp, requests: usize) {
    for r in 0..requests {
        let events: Vec<Value> = (0..10).map(|i| event(r * 10 + i)).collect();
        let response = app.post_events(&app.key, &bulk(&events)).await;
        assert_eq!(response.status(), 202);
    }
    app.wait_for_settled(DRAIN).await;
}

/// Wait until the page's `field` of `queue` equals `expected`.
async fn page_shows(page: &Browser, queue: &str, field: &str, expected: i64) {
    page.wait_for(
        &format!("{queue} {field} = {expected}"),
        &cell(queue, field),
        |v| v.as_str().and_then(|s| s.parse::<i64>().ok()) == Some(expected),
    )
    .await;
}

/// Where the screenshot goes: `$CARGO_TARGET_DIR/test-artifacts/dashboard.png`, or the
/// workspace's `target/`.
fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("test-artifacts").join("dashboard.png")
}

async fn sign_in(page: &Browser, key: &str, role: &str) {
    page.type_into("#api-key", key).await;
    page.click("#connect").await;
    page.wait_for(
        &format!("the {role} role"),
        "document.getElementById('ops-role').textContent",
        |v| v == role,
    )
    .await;
}

/// The operator watches counts follow published events, pauses and resumes a queue, reads a
/// dead letter's error history and replays it until it is delivered; a tenant key then sees
/// its own queue with no mutating control.
#[sqlx::test(migrations = false)]
async fn the_dashboard_in_chromium_follows_the_queues_and_replays_a_dead_letter(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let down = Arc::new(AtomicBool::new(true));
    let embedder = Arc::new(SwitchableEmbedder {
        down: down.clone(),
        inner: HashingEmbedder::default(),
    });
    let app = spawn_app(pool, opts, move |s| s.pipeline.embedder = embedder).await;
    let driver = Chromedriver::start().await;
    let page = driver.browser().await;
    page.open(&format!("{}/", app.base)).await;

    sign_in(&page, &app.operator_key, "operator").await;
    assert!(page.shown("#queues").await, "the queues table is shown");

    // live counts follow what is published
    let keyword = "index_record:keyword";
    publish(&app, 2).await;
    let before = api_count(&app, keyword, "delivered").await;
    assert!(before > 0);
    page_shows(&page, keyword, "delivered", before).await;
    publish(&app, 1).await;
    let after = api_count(&app, keyword, "delivered").await;
    assert!(after > before, "{after} > {before}");
    page_shows(&page, keyword, "delivered", after).await;

    // pause and resume from the page
    let row = format!("#queues tr[data-queue=\"{keyword}\"]");
    page.click(&format!("{row} button[data-action=\"pause\"]"))
        .await;
    page.wait_for("the queue paused", &cell(keyword, "paused"), |v| {
        v == "true"
    })
    .await;
    assert_eq!(api_queue(&app, keyword).await["paused"], true);
    page.click(&format!("{row} button[data-action=\"resume\"]"))
        .await;
    page.wait_for("the queue resumed", &cell(keyword, "paused"), |v| {
        v == "false"
    })
    .await;

    // the dead letters of the failing vector backend, with their history
    let vector = "index_record:vector";
    let dead = api_count(&app, vector, "dead").await;
    assert_eq!(
        dead, 3,
        "one vector record per request, dead after one retry"
    );
    page_shows(&page, vector, "dead", dead).await;
    page.click(&format!(
        "#queues tr[data-queue=\"{vector}\"] button[data-action=\"select\"]"
    ))
    .await;
    let rows = "document.querySelectorAll('#dead-letters tbody tr[data-event-id]')";
    page.wait_for("the dead letters", &format!("{rows}.length"), |v| v == dead)
        .await;
    let id = page
        .eval(&format!("{rows}[0].dataset.eventId"))
        .await
        .as_str()
        .expect("an id")
        .to_owned();
    let letter = format!("#dead-letters tr[data-event-id=\"{id}\"]");
    let history = page
        .eval(&format!(
            "document.querySelector('{letter} details').textContent"
        ))
        .await;
    assert!(
        history
            .as_str()
            .is_some_and(|h| h.contains("embedding service unreachable") && h.contains("2 errors")),
        "{history}"
    );

    // the backend is back: replay from the page, and the event is delivered
    down.store(false, Ordering::SeqCst);
    page.click(&format!("{letter} button[data-action=\"replay\"]"))
        .await;
    page.wait_for(
        "the replayed letter gone",
        &format!("document.querySelector('{letter}') === null"),
        |v| v == true,
    )
    .await;
    app.wait_until("the replayed event delivered", DRAIN, || async {
        app.get_json(&app.operator_key, &format!("/v1/events/{id}"))
            .await["status"]
            == "delivered"
    })
    .await;
    page.type_into("#event-id", &id).await;
    page.click("#event-show").await;
    page.wait_for(
        "the event delivered",
        "document.getElementById('event-status').textContent",
        |v| v == "delivered",
    )
    .await;
    page_shows(&page, vector, "dead", dead - 1).await;

    let shot = screenshot_path();
    page.eval("window.scrollTo(0, 0) ?? true").await;
    page.screenshot(&shot).await;
    println!("dashboard screenshot: {}", shot.display());

    // a tenant key: its own namespace, read-only
    let ping = publish_ping(&app, TENANT_A).await;
    page.click("#sign-out").await;
    sign_in(&page, &app.key, "tenant").await;
    assert_read_only(&page, &ping).await;

    page.close().await;
    drop(driver);
    app.shutdown().await;
}

/// Publish one `it.ping` event into `namespace` of the server's database, with the library;
/// its id.
async fn publish_ping(app: &TestApp, namespace: &str) -> String {
    let store = PgStore::new(app.db.pg().clone())
        .with_namespace(namespace)
        .expect("a valid namespace");
    let outcome = store
        .publish(Message::new(Ping { n: 1 }))
        .await
        .expect("publishing");
    outcome.id().expect("a new event").to_string()
}

/// The signed-in page shows the `it.ping` queue (one due event) and its detail, the
/// read-only badge, and not one mutating control.
async fn assert_read_only(page: &Browser, event: &str) {
    let ping = "it.ping:";
    page_shows(page, ping, "due", 1).await;
    page.click(&format!(
        "#queues tr[data-queue=\"{ping}\"] button[data-action=\"select\"]"
    ))
    .await;
    page.wait_for(
        "the queue's detail",
        "document.getElementById('queue-detail').hidden",
        |v| v == false,
    )
    .await;
    page.type_into("#event-id", event).await;
    page.click("#event-show").await;
    page.wait_for(
        "the event",
        "document.getElementById('event-status').textContent",
        |v| v == "pending",
    )
    .await;
    for control in ["#replay-all", "#purge"] {
        assert!(!page.shown(control).await, "{control} is hidden");
    }
    let mutating = page
        .eval(
            "document.querySelectorAll('button[data-action=pause], button[data-action=resume], \
             button[data-action=replay], button[data-action=skip], #event-replay, \
             #event-cancel').length",
        )
        .await;
    assert_eq!(mutating, 0, "no mutating control is shown");
    assert!(
        page.shown("#ops-read-only").await,
        "the read-only badge is shown"
    );
}

/// A server started with `--ops-read-only`: even the operator key gets a page without a
/// mutating control.
#[sqlx::test(migrations = false)]
async fn the_dashboard_of_a_read_only_server_shows_no_control_to_the_operator(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(pool, opts, |s| {
        s.ops_read_only = true;
        s.run_workers = false;
    })
    .await;
    let ns = app.get_json(&app.operator_key, "/v1/ops").await["namespace"]
        .as_str()
        .expect("a namespace")
        .to_owned();
    let ping = publish_ping(&app, &ns).await;
    let driver = Chromedriver::start().await;
    let page = driver.browser().await;
    page.open(&format!("{}/", app.base)).await;
    sign_in(&page, &app.operator_key, "operator").await;
    assert_read_only(&page, &ping).await;
    page.close().await;
    drop(driver);
    app.shutdown().await;
}

/// `/` and its assets: content types, the same-origin CSP, revalidation, and 404 for any
/// other asset name; no key is needed.
#[sqlx::test(migrations = false)]
async fn the_dashboard_is_served_with_content_types_and_a_same_origin_csp(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_default_app(pool, opts).await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/dom.js", "text/javascript; charset=utf-8"),
        ("/assets/charts.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
    ] {
        let response = app.get_without_key(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| response.headers()[name].to_str().expect("ASCII").to_owned();
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        let etag = header("etag");
        let again = app
            .client
            .get(format!("{}{path}", app.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("sending");
        assert_eq!(again.status(), 304, "{path}");
    }
    let missing = app.get_without_key("/assets/other.js").await;
    assert_eq!(missing.status(), 404);
    app.shutdown().await;
}
