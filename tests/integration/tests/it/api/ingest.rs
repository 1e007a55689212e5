//! `POST /v1/events/bulk`: auth, body parsing, size limits, gzip, publishing in chunks and
//! request ids (the ingestion log and outages are in `ingest_log`).

use conveyor_integration::{event, gzip, TestApp};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Body, Response};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{api_only, api_with, assert_error, assert_error_says, assert_post_refused, bulk};

/// `POST /v1/events/bulk` with the tenant's key and `body` sent as `Content-Encoding: encoding`.
async fn post_encoded(app: &TestApp, encoding: &str, body: impl Into<Body>) -> Response {
    app.bulk_request(Some(&app.key))
        .header(CONTENT_ENCODING, encoding)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// `POST /v1/events/bulk` of one event with the tenant's key and `x-request-id: request_id`.
async fn post_with_request_id(app: &TestApp, request_id: &str) -> Response {
    app.bulk_request(Some(&app.key))
        .header("x-request-id", request_id)
        .json(&bulk(vec![event("click", "u1", "web")]))
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn missing_api_key_is_401(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .bulk_request(None)
        .json(&bulk(vec![event("click", "u1", "web")]))
        .send()
        .await
        .unwrap();
    assert_error_says(response, 401, "Authorization").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn unknown_api_key_is_401(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .post_events("not-a-key", &bulk(vec![event("click", "u1", "web")]))
        .await;
    assert_error_says(response, 401, "unknown API key").await;
    let response = app.get("not-a-key", "/v1/analytics/events/summary").await;
    assert_eq!(response.status(), 401);
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn malformed_json_is_400_with_its_position(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .bulk_request(Some(&app.key))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"events": [{"event_type": "click",}]}"#)
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 400, "events[0]").await;
    assert!(
        body["error"].as_str().unwrap().contains("line 1 column"),
        "{body}"
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_mistyped_or_missing_field_is_422_naming_index_and_field(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    let mut wrong = event("click", "u1", "web");
    wrong["timestamp"] = json!("yesterday");
    let mut missing = event("click", "u1", "web");
    missing.as_object_mut().unwrap().remove("event_type");
    let body = bulk(vec![event("click", "u1", "web"), wrong, missing]);
    let response = app.post_events(&app.key, &body).await;
    let body = assert_error(response, 422, "events[1].timestamp").await;
    let details = body["details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{body}");
    assert_eq!(details[0]["index"], 1);
    assert_eq!(details[1]["index"], 2);
    assert_eq!(details[1]["field"], "events[2].event_type");
    // a body without the `events` envelope is still a 400
    assert_post_refused(&app, &json!({"events": 1}), 400, "events").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn more_than_5000_events_is_413(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let body = bulk(vec![event("click", "u1", "web"); 5_001]);
    assert_post_refused(&app, &body, 413, "events").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn body_over_the_wire_limit_is_413(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_with(pool, opts, |s| s.limits.max_body_bytes = 1_024).await;
    let body = bulk(vec![event("click", "u1", "web"); 20]);
    let response = app.post_events(&app.key, &body).await;
    assert_error_says(response, 413, "1024 bytes").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn gzip_over_the_decompressed_cap_is_413(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_with(pool, opts, |s| s.limits.max_decompressed_bytes = 4_096).await;
    let json = serde_json::to_vec(&bulk(vec![event("click", "u1", "web"); 100])).unwrap();
    let response = post_encoded(&app, "gzip", gzip(&json)).await;
    assert_error_says(response, 413, "decompressed").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn corrupt_gzip_is_400(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let mut corrupt = gzip(&serde_json::to_vec(&bulk(vec![event("c", "u", "s")])).unwrap());
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    corrupt.truncate(corrupt.len() - 4);
    let response = post_encoded(&app, "gzip", corrupt).await;
    let body = assert_error(response, 400, "body").await;
    assert!(body["error"].as_str().unwrap().contains("gzip"), "{body}");
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn gzip_body_is_accepted(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let json = serde_json::to_vec(&bulk(vec![event("click", "u1", "web"); 3])).unwrap();
    let response = post_encoded(&app, "gzip", gzip(&json)).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 3);
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn unsupported_content_encoding_is_415(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = post_encoded(&app, "br", "{}").await;
    assert_eq!(response.status(), 415);
    app.shutdown().await;
}

/// Accepted events reach `events_raw` through the ingestion log, and each index backend in
/// records of at most 1,000 events, fair-queued by tenant.
#[sqlx::test(migrations = false)]
async fn accepted_events_are_stored_and_published_in_chunks_of_1000(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    let events: Vec<Value> = (0..2_500)
        .map(|i| event("click", &format!("u{i}"), "web"))
        .collect();
    let response = app.post_events(&app.key, &bulk(events.clone())).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 2_500);
    app.wait_for_published().await;
    assert_eq!(
        app.db
            .scalar("select count(*) from events_raw where namespace = 'tenant-a'")
            .await,
        2_500,
        "stored once published from the log"
    );
    for backend in ["rollup", "keyword", "vector"] {
        let chunks: Vec<(i64, String)> = sqlx::query_as(
            "select jsonb_array_length(payload->'events')::bigint, fairness_key
             from conveyor_events where event_type = 'index_record' and routing_key = $1
             order by id",
        )
        .bind(backend)
        .fetch_all(app.db.pg())
        .await
        .unwrap();
        let sizes: Vec<i64> = chunks.iter().map(|c| c.0).collect();
        assert_eq!(sizes, [1_000, 1_000, 500], "{backend}");
        assert!(chunks.iter().all(|c| c.1 == "tenant-a"));
    }
    let others: i64 = app
        .db
        .scalar("select count(*) from conveyor_events where routing_key not in ('rollup', 'keyword', 'vector')")
        .await;
    assert_eq!(others, 0, "no fan-out and no raw record on the API's path");

    // the same request again stores and publishes nothing more
    assert_eq!(app.post_events(&app.key, &bulk(events)).await.status(), 202);
    app.wait_for_published().await;
    assert_eq!(
        app.db.scalar("select count(*) from conveyor_events").await,
        9
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn request_id_is_echoed_when_sent(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = post_with_request_id(&app, "req-123").await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-request-id"], "req-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "req-123");
    app.wait_for_published().await;
    let stored: String = sqlx::query_scalar("select payload->>'request_id' from conveyor_events")
        .fetch_one(app.db.pg())
        .await
        .unwrap();
    assert_eq!(stored, "req-123");
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn request_id_is_generated_when_absent(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
        .await;
    assert_eq!(response.status(), 202);
    let header = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&header).is_ok(), "{header}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], header.as_str());
    // errors carry one too
    let response = app.get("nope", "/v1/analytics/events/summary").await;
    assert!(response.headers().contains_key("x-request-id"));
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn overlong_request_id_is_400(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = post_with_request_id(&app, &"r".repeat(129)).await;
    assert_error(response, 400, "x-request-id").await;
    app.shutdown().await;
}
