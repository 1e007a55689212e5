//! `/healthz` (liveness), `/healthz/detailed` (readiness), and JSON for unknown routes.

use conveyor_integration::{event, TestApp};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{api_only, api_only_sqlite, bulk};

#[sqlx::test(migrations = false)]
async fn healthz_is_ok(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let body: Value = app.get_without_key("/healthz").await.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok"}));
    app.shutdown().await;
}

on_each_backend!(detailed_reports(api_only, api_only_sqlite):
    healthz_detailed_reports_database_log_and_partitions,
    healthz_detailed_reports_database_log_and_partitions_on_sqlite
);

async fn detailed_reports(app: TestApp) {
    app.post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
        .await;
    app.wait_for_published().await;
    let (status, body) = app.detailed_health().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["database"]["ok"], true, "{body}");
    assert_eq!(body["database"]["default_partition_rows"], 0, "{body}");
    assert_eq!(body["ingest_log"]["unpublished_events"], 0, "{body}");
    assert!(
        body.get("backlog").is_none(),
        "no outbox scan unless asked: {body}"
    );
    // on request, the outbox's counts: one index record per index backend
    let response = app.get_as_operator("/healthz/detailed?backlog=true").await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["backlog"]["pending"], 3, "{body}");
    app.shutdown().await;
}

on_each_backend!(detailed_is_503_when_down(api_only, api_only_sqlite):
    healthz_detailed_is_503_when_the_database_is_down,
    healthz_detailed_is_503_when_the_database_is_down_on_sqlite
);

async fn detailed_is_503_when_down(app: TestApp) {
    app.close_database().await;
    let (status, body) = app.detailed_health().await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["database"]["ok"], false, "{body}");
    let live = app.get_without_key("/healthz").await;
    assert_eq!(
        live.status(),
        200,
        "liveness does not depend on the database"
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn unknown_routes_and_methods_answer_json(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app.get(&app.key, "/v1/nothing-here").await;
    assert_eq!(response.status(), 404);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    let response = app.get(&app.key, "/v1/events/bulk").await;
    assert_eq!(response.status(), 405);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    app.shutdown().await;
}
