//! The whole pipeline over HTTP: every acknowledged event lands once, rollups are exact,
//! search finds what was posted, duplicates change nothing, a failing backend is isolated,
//! and requests acknowledged through a database outage land once it is back.
//!
//! A scenario that holds on both backends is one `async fn(TestApp)`, run by a Postgres test
//! (`#[sqlx::test]`, a fresh database) and by the same name with `_on_sqlite` (a fresh file).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conveyor_handlers::{EmbedError, Embedder};
use conveyor_integration::pipeline::{bulk, event, temp_dir};
use conveyor_integration::{
    remove_database, spawn_app, spawn_default_app, spawn_default_sqlite_app, spawn_sqlite_app,
    spawn_sqlite_app_at, temp_database, TestApp,
};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const DRAIN: Duration = Duration::from_secs(120);

/// Post `requests` requests of `per_request` events from 4 concurrent clients.
async fn post_many(app: &TestApp, requests: usize, per_request: usize) {
    let clients = 4;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (client, url, key) = (
            app.client.clone(),
            format!("{}/v1/events/bulk", app.base),
            app.key.clone(),
        );
        tasks.spawn(async move {
            for r in (c..requests).step_by(clients) {
                let events: Vec<Value> = (0..per_request)
                    .map(|i| event(r * per_request + i))
                    .collect();
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&bulk(&events))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

on_each_backend!(ten_thousand_events(spawn_default_app, spawn_default_sqlite_app):
    /// 10,000 events posted in 100 requests land in `events_raw` exactly once, the rollups equal
    /// the GROUP BY, and keyword and vector search find a planted event.
    ten_thousand_events_land_once_with_exact_rollups_and_are_searchable,
    ten_thousand_events_land_once_with_exact_rollups_and_are_searchable_on_sqlite
);

async fn ten_thousand_events(app: TestApp) {
    let start = std::time::Instant::now();
    post_many(&app, 100, 100).await;
    let planted = json!({
        "event_type": "planted_signup",
        "actor_id": "actor-planted",
        "source": "web",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "attributes": {"campaign": "zebraquokka", "plan": "enterprise"}
    });
    let response = app.post_events(&app.key, &bulk(&[planted])).await;
    assert_eq!(response.status(), 202);
    let posted = start.elapsed();
    app.wait_for_settled(DRAIN).await;
    eprintln!(
        "10,001 events: posted in {posted:?}, settled after {:?}",
        start.elapsed()
    );

    assert_eq!(app.db.raw_counts().await, (10_001, 10_001));
    app.db.assert_rollups_match_raw().await;
    let dead = app
        .db
        .scalar("select count(*) from conveyor_events where status = 'dead'")
        .await;
    assert_eq!(dead, 0);

    let summary = app.get_json(&app.key, "/v1/analytics/events/summary").await;
    assert_eq!(summary["total"], 10_001, "{summary}");
    assert_eq!(summary["unique_actors"], 51, "{summary}");

    let hits = app.get_json(&app.key, "/v1/search?q=zebraquokka").await;
    assert_eq!(hits["data"][0]["event_type"], "planted_signup", "{hits}");
    let similar = app
        .get_json(
            &app.key,
            "/v1/search/similar?q=planted%20signup%20zebraquokka%20enterprise",
        )
        .await;
    assert_eq!(
        similar["data"][0]["event_type"], "planted_signup",
        "{similar}"
    );
    app.shutdown().await;
}

on_each_backend!(posted_twice(spawn_default_app, spawn_default_sqlite_app):
    /// The same request posted twice (with client ids, and without: derived ids) stores and counts
    /// every event once.
    the_same_request_posted_twice_changes_nothing,
    the_same_request_posted_twice_changes_nothing_on_sqlite
);

async fn posted_twice(app: TestApp) {
    let with_ids: Vec<Value> = (0..50).map(event).collect();
    let without_ids: Vec<Value> = (50..100)
        .map(|i| {
            let mut e = event(i);
            e.as_object_mut().unwrap().remove("event_id");
            e
        })
        .collect();
    let body = bulk(&[with_ids, without_ids].concat());
    for _ in 0..2 {
        assert_eq!(app.post_events(&app.key, &body).await.status(), 202);
    }
    app.wait_for_settled(DRAIN).await;
    assert_eq!(app.db.raw_counts().await, (100, 100));
    app.db.assert_rollups_match_raw().await;
    let documents = app.db.scalar("select count(*) from search_documents").await;
    let embeddings = app
        .db
        .scalar("select count(*) from search_embeddings")
        .await;
    assert_eq!((documents, embeddings), (100, 100));
    app.shutdown().await;
}

/// What every backend holds: raw (rows, distinct ids), the rollup total, documents, embeddings.
async fn backend_counts(app: &TestApp) -> ((i64, i64), i64, i64, i64) {
    (
        app.db.raw_counts().await,
        app.db
            .scalar("select cast(sum(count) as bigint) from analytics_daily_event_counts")
            .await,
        app.db.scalar("select count(*) from search_documents").await,
        app.db
            .scalar("select count(*) from search_embeddings")
            .await,
    )
}

/// Every backend's batch delivered again, as after a crash between its effects and the
/// acknowledgement elsewhere, changes nothing: same rows, same counts. The raw store is
/// written by the API itself, so the requests' events are also queued again as
/// `events_received` (the spool's path, whose fan-out feeds every backend, raw included).
#[sqlx::test(migrations = false)]
async fn reprocessed_index_records_change_nothing(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(pool, opts, |_| {}).await;
    post_many(&app, 10, 100).await;
    app.wait_for_settled(DRAIN).await;
    let before = backend_counts(&app).await;

    // the delivered index records, queued again with their payloads as they were
    let requeued = sqlx::query(
        "insert into conveyor_events (namespace, event_type, routing_key, payload, fairness_key)
         select namespace, event_type, routing_key, payload, fairness_key from conveyor_events
         where event_type = 'index_record' and status = 'delivered'",
    )
    .execute(app.db.pg())
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(
        requeued, 30,
        "10 requests × 3 index backends (the API stores raw itself)"
    );
    // and each request's events as the spool forwards them (a keyword record has every
    // event with its attributes, in the shape of `EventsReceived`)
    let refanned = sqlx::query(
        "insert into conveyor_events (namespace, event_type, routing_key, payload, fairness_key)
         select namespace, 'events_received', '', payload, fairness_key from conveyor_events
         where event_type = 'index_record' and routing_key = 'keyword' and status = 'delivered'",
    )
    .execute(app.db.pg())
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(refanned, 10);
    app.wait_for_settled(DRAIN).await;
    let fanned_raw = app
        .db
        .scalar("select count(*) from conveyor_events where routing_key = 'raw' and status = 'delivered'")
        .await;
    assert_eq!(fanned_raw, 10, "the fan-out fed the raw store again");

    let after = backend_counts(&app).await;
    assert_eq!(after, before);
    assert_eq!(before.0, (1_000, 1_000));
    app.db.assert_rollups_match_raw().await;
    app.shutdown().await;
}

/// An embedder that always fails, like a model service that is down.
#[derive(Debug)]
struct DownEmbedder;

#[async_trait::async_trait]
impl Embedder for DownEmbedder {
    fn dimensions(&self) -> usize {
        64
    }
    async fn embed(&self, _: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Err(EmbedError("embedding service unreachable".into()))
    }
}

fn vector_down(s: &mut conveyor_server::Settings) {
    s.pipeline.embedder = Arc::new(DownEmbedder);
    s.pipeline.retry.max_retries = 1;
    s.pipeline.retry.base_delay = Duration::from_millis(50);
}

on_each_backend!(
    failing_vector_backend(
        |pool, opts| spawn_app(pool, opts, vector_down),
        || spawn_sqlite_app(vector_down)
    ):
    /// A failing vector backend leaves the raw store, rollups and keyword index complete; its own
    /// records retry (once, as configured) and are dead-lettered with the error.
    a_failing_vector_backend_blocks_nothing_else,
    a_failing_vector_backend_blocks_nothing_else_on_sqlite
);

async fn failing_vector_backend(app: TestApp) {
    post_many(&app, 5, 100).await;
    app.wait_for_settled(DRAIN).await;

    assert_eq!(app.db.raw_counts().await, (500, 500));
    app.db.assert_rollups_match_raw().await;
    assert_eq!(
        app.db.scalar("select count(*) from search_documents").await,
        500
    );
    assert_eq!(
        app.db
            .scalar("select count(*) from search_embeddings")
            .await,
        0
    );
    let dead: Vec<(String, i32, String)> = app
        .db
        .rows("select routing_key, attempts, last_error from conveyor_events where status = 'dead'")
        .await;
    assert_eq!(dead.len(), 5, "{dead:?}");
    for (routing_key, attempts, error) in &dead {
        assert_eq!(routing_key, "vector");
        assert_eq!(*attempts, 2, "one attempt and one retry");
        assert!(error.contains("embedding service unreachable"), "{error}");
    }
    app.shutdown().await;
}

/// Requests acknowledged from the ingestion log while the database was down land exactly
/// once after a restart against the database, with exact rollups.
#[sqlx::test(migrations = false)]
async fn events_acknowledged_while_the_database_was_down_land_after_a_restart(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    acknowledged_then_restarted(|log| {
        spawn_app(pool.clone(), opts.clone(), move |s| s.log.dir = log)
    })
    .await;
}

#[tokio::test]
async fn events_acknowledged_while_the_database_was_down_land_after_a_restart_on_sqlite() {
    let file = temp_database();
    acknowledged_then_restarted(|log| spawn_sqlite_app_at(&file, move |s| s.log.dir = log)).await;
    remove_database(&file);
}

/// `spawn(log_dir)` starts a server on the test's database; called twice.
async fn acknowledged_then_restarted<F, Fut>(spawn: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = TestApp>,
{
    let dir = temp_dir("conveyor-outage");
    let log = dir.join("log");
    let down = spawn(log.clone()).await;
    down.close_database().await;
    let events: Vec<Value> = (0..300).map(event).collect();
    for chunk in events.chunks(100) {
        assert_eq!(
            down.post_events(&down.key, &bulk(chunk)).await.status(),
            202
        );
    }
    assert_eq!(down.unpublished().await, 300);
    down.shutdown().await;

    let app = spawn(log.clone()).await;
    app.wait_until("acknowledged events stored", DRAIN, || async {
        app.db.raw_counts().await.0 == 300
    })
    .await;
    app.wait_for_settled(DRAIN).await;
    assert_eq!(app.db.raw_counts().await, (300, 300));
    app.db.assert_rollups_match_raw().await;
    assert_eq!(app.unpublished().await, 0);
    app.shutdown().await;
    std::fs::remove_dir_all(dir).ok();
}

/// Spool files of an earlier version are moved into the ingestion log at start-up and land;
/// an entry the database refuses (a NUL character, which Postgres text rejects) is kept in
/// `rejected/` instead of blocking the rest; a file that does not parse stays for an operator.
#[sqlx::test(migrations = false)]
async fn an_earlier_versions_spool_is_moved_into_the_log_and_a_refused_entry_set_aside(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let dir = temp_dir("conveyor-legacy");
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let batch = |actor: &str| {
        json!([{
            "namespace": "tenant-a", "request_id": "r",
            "events": [{
                "event_id": uuid::Uuid::new_v4(), "event_type": "e", "actor_id": actor,
                "source": "s", "timestamp": chrono::Utc::now(), "attributes": {}
            }]
        }])
    };
    std::fs::write(
        spool.join("00000000000000000001-0000000000-a.spool.json"),
        batch("nul\u{0}actor").to_string(),
    )
    .unwrap();
    std::fs::write(
        spool.join("00000000000000000002-0000000000-b.spool.json"),
        b"{not json",
    )
    .unwrap();
    std::fs::write(
        spool.join("00000000000000000003-0000000000-c.spool.json"),
        batch("fine").to_string(),
    )
    .unwrap();
    let legacy = spool.clone();
    let app = spawn_app(pool, opts, move |s| s.legacy_spool_dir = legacy).await;
    app.wait_for_published().await;
    assert_eq!(
        app.db
            .scalar("select count(*) from events_raw where actor_id = 'fine'")
            .await,
        1
    );
    let rejected = std::fs::read_dir(app.log_dir.join("rejected"))
        .unwrap()
        .count();
    assert_eq!(rejected, 1, "the refused entry is kept");
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert_eq!(left.len(), 1, "the unparsable file stays");
    let (_, health) = app.detailed_health().await;
    assert_eq!(health["ingest_log"]["rejected_entries"], 1, "{health}");
    app.shutdown().await;
    std::fs::remove_dir_all(dir).ok();
}
