//! The HTTP API of the real server, in-process on a free port: every 4xx names what is
//! wrong, request ids are echoed, health answers, and tenants never see each other's data.

use std::time::Duration;

use conveyor_integration::{event, gzip, spawn_app, TestApp};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The server without workers: enough for everything that never reaches a handler.
async fn api_only(pool: PgPoolOptions, opts: PgConnectOptions) -> TestApp {
    spawn_app(pool, opts, |s| s.run_workers = false).await
}

/// Assert the status and that the JSON error body names `field`; returns the body.
async fn assert_error(response: reqwest::Response, status: u16, field: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("a JSON error body");
    assert!(body["error"].is_string(), "{body}");
    let named = body["field"] == field
        || body["details"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["field"] == field));
    assert!(named, "expected {field} named in {body}");
    body
}

fn bulk(events: Vec<Value>) -> Value {
    json!({ "events": events })
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
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("Authorization"),
        "{body}"
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn unknown_api_key_is_401(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .post_events("not-a-key", &bulk(vec![event("click", "u1", "web")]))
        .await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("unknown API key"),
        "{body}"
    );
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
async fn wrong_type_is_400_naming_the_field(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let mut wrong = event("click", "u1", "web");
    wrong["timestamp"] = json!("yesterday");
    let body = bulk(vec![event("click", "u1", "web"), wrong]);
    assert_error(
        app.post_events(&app.key, &body).await,
        400,
        "events[1].timestamp",
    )
    .await;
    assert_error(
        app.post_events(&app.key, &json!({"events": 1})).await,
        400,
        "events",
    )
    .await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn more_than_5000_events_is_413(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let body = bulk(vec![event("click", "u1", "web"); 5_001]);
    assert_error(app.post_events(&app.key, &body).await, 413, "events").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn body_over_the_wire_limit_is_413(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(pool, opts, |s| {
        s.run_workers = false;
        s.limits.max_body_bytes = 1_024;
    })
    .await;
    let body = bulk(vec![event("click", "u1", "web"); 20]);
    let response = app.post_events(&app.key, &body).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("1024 bytes"),
        "{body}"
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn gzip_over_the_decompressed_cap_is_413(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(pool, opts, |s| {
        s.run_workers = false;
        s.limits.max_decompressed_bytes = 4_096;
    })
    .await;
    let json = serde_json::to_vec(&bulk(vec![event("click", "u1", "web"); 100])).unwrap();
    let response = app
        .bulk_request(Some(&app.key))
        .header(CONTENT_ENCODING, "gzip")
        .body(gzip(&json))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("decompressed"),
        "{body}"
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn corrupt_gzip_is_400(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let mut corrupt = gzip(&serde_json::to_vec(&bulk(vec![event("c", "u", "s")])).unwrap());
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    corrupt.truncate(corrupt.len() - 4);
    let response = app
        .bulk_request(Some(&app.key))
        .header(CONTENT_ENCODING, "gzip")
        .body(corrupt)
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 400, "body").await;
    assert!(body["error"].as_str().unwrap().contains("gzip"), "{body}");
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn gzip_body_is_accepted(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let json = serde_json::to_vec(&bulk(vec![event("click", "u1", "web"); 3])).unwrap();
    let response = app
        .bulk_request(Some(&app.key))
        .header(CONTENT_ENCODING, "gzip")
        .body(gzip(&json))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 3);
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn accepted_events_are_published_in_chunks_of_1000(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    let events = (0..2_500)
        .map(|i| event("click", &format!("u{i}"), "web"))
        .collect();
    let response = app.post_events(&app.key, &bulk(events)).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 2_500);
    let chunks: Vec<(i64, String)> = sqlx::query_as(
        "select jsonb_array_length(payload->'events')::bigint, fairness_key
         from conveyor_events where event_type = 'events_received' order by id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let sizes: Vec<i64> = chunks.iter().map(|c| c.0).collect();
    assert_eq!(sizes, [1_000, 1_000, 500]);
    assert!(chunks.iter().all(|c| c.1 == "tenant-a"));
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn invalid_event_is_422_naming_index_and_field(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let mut bad = event("click", "u1", "web");
    bad["event_type"] = json!("x".repeat(129));
    bad["attributes"] = json!({"blob": "y".repeat(17 * 1024)});
    let body = bulk(vec![
        event("click", "u1", "web"),
        event("click", "u1", "web"),
        bad,
    ]);
    let body = assert_error(
        app.post_events(&app.key, &body).await,
        422,
        "events[2].event_type",
    )
    .await;
    assert_eq!(body["error"], "invalid events");
    let details = body["details"].as_array().unwrap();
    assert!(details.iter().all(|d| d["index"] == 2), "{body}");
    assert!(
        details.iter().any(|d| d["field"] == "events[2].attributes"),
        "{body}"
    );
    app.shutdown().await;
}

/// Postgres refuses NUL in text and jsonb; such an event is a 422, never a spooled poison.
#[sqlx::test(migrations = false)]
async fn nul_character_is_422_naming_the_field(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let mut bad = event("click", "u1", "web");
    bad["attributes"] = json!({"note": "a\u{0}b"});
    assert_error(
        app.post_events(&app.key, &bulk(vec![bad])).await,
        422,
        "events[0].attributes.note",
    )
    .await;
    let mut bad = event("click", "u1", "web");
    bad["actor_id"] = json!("u\u{0}1");
    assert_error(
        app.post_events(&app.key, &bulk(vec![bad])).await,
        422,
        "events[0].actor_id",
    )
    .await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn future_timestamp_is_422(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let mut future = event("click", "u1", "web");
    future["timestamp"] = json!((chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    let body = assert_error(
        app.post_events(&app.key, &bulk(vec![future])).await,
        422,
        "events[0].timestamp",
    )
    .await;
    assert!(body.to_string().contains("not clamped"), "{body}");
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn empty_events_is_422(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    assert_error(
        app.post_events(&app.key, &bulk(vec![])).await,
        422,
        "events",
    )
    .await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn unsupported_content_encoding_is_415(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .bulk_request(Some(&app.key))
        .header(CONTENT_ENCODING, "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn bad_query_parameters_are_400_naming_the_parameter(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    for (path, field) in [
        ("/v1/analytics/events/daily?from=2026-13-01", "from"),
        ("/v1/analytics/events/daily?to=yesterday", "to"),
        (
            "/v1/analytics/events/daily?from=2026-02-01&to=2026-01-01",
            "from",
        ),
        ("/v1/analytics/events/daily?cursor=not-a-cursor", "cursor"),
        ("/v1/analytics/events/daily?limit=0", "limit"),
        ("/v1/analytics/events/daily?limit=1001", "limit"),
        ("/v1/analytics/events/daily?limit=ten", "limit"),
        ("/v1/analytics/events/daily?form=2026-01-01", "form"),
        ("/v1/analytics/events/summary?from=01/02/2026", "from"),
        ("/v1/analytics/event-types?to=2026-1-32", "to"),
        ("/v1/events/raw?from=2026-01-01", "from"),
        ("/v1/events/raw?cursor=eyJ4IjoxfQ", "cursor"),
        ("/v1/events/raw?limit=-1", "limit"),
        ("/v1/search?q=a&limit=0", "limit"),
        ("/v1/search?q=a&q=b", "q"),
    ] {
        let response = app.get(&app.key, path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], field, "{path}: {body}");
    }
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn raw_window_too_wide_is_400(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .get(
            &app.key,
            "/v1/events/raw?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("invalid query"),
        "{body}"
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn empty_search_query_is_400_naming_q(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    for path in [
        "/v1/search",
        "/v1/search?q=",
        "/v1/search?q=%20%20",
        "/v1/search/similar?q=",
    ] {
        let response = app.get(&app.key, path).await;
        assert_error(response, 400, "q").await;
    }
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn request_id_is_echoed_when_sent(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .bulk_request(Some(&app.key))
        .header("x-request-id", "req-123")
        .json(&bulk(vec![event("click", "u1", "web")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-request-id"], "req-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "req-123");
    let stored: String = sqlx::query_scalar("select payload->>'request_id' from conveyor_events")
        .fetch_one(&app.pool)
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
async fn healthz_is_ok(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let body: Value = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"status": "ok"}));
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn healthz_detailed_reports_database_backlog_partitions_and_spool(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    app.post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
        .await;
    let response = app
        .client
        .get(format!("{}/healthz/detailed", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["database"]["ok"], true, "{body}");
    assert_eq!(body["backlog"]["pending"], 1, "{body}");
    assert_eq!(body["default_partition_rows"], 0, "{body}");
    assert_eq!(body["spool_pending"], 0, "{body}");
    app.shutdown().await;
}

/// Needs the pipeline's handlers: events flow through to every backend before reading.
#[sqlx::test(migrations = false)]
async fn another_tenant_sees_none_of_a_tenants_events(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(pool, opts, |_| {}).await;
    let events = (0..5)
        .map(|i| event("signup", &format!("u{i}"), "web"))
        .collect();
    assert_eq!(app.post_events(&app.key, &bulk(events)).await.status(), 202);
    app.wait_for_drain().await;

    for (key, total) in [(&app.key, 5), (&app.other_key, 0)] {
        let summary = app.get_json(key, "/v1/analytics/events/summary").await;
        assert_eq!(summary["total"], total, "{summary}");
        let daily = app.get_json(key, "/v1/analytics/events/daily").await;
        assert_eq!(
            daily["data"].as_array().unwrap().len(),
            total.min(1),
            "{daily}"
        );
        let types = app.get_json(key, "/v1/analytics/event-types").await;
        assert_eq!(
            types["data"].as_array().unwrap().len(),
            total.min(1),
            "{types}"
        );
        let raw = app.get_json(key, "/v1/events/raw").await;
        assert_eq!(raw["data"].as_array().unwrap().len(), total, "{raw}");
        let found = app.get_json(key, "/v1/search?q=signup").await;
        assert_eq!(found["data"].as_array().unwrap().len(), total, "{found}");
        let similar = app.get_json(key, "/v1/search/similar?q=signup%20web").await;
        assert_eq!(
            similar["data"].as_array().unwrap().is_empty(),
            total == 0,
            "{similar}"
        );
    }
    app.shutdown().await;
}

/// Needs the pipeline's handlers.
#[sqlx::test(migrations = false)]
async fn daily_counts_page_with_next_cursor(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(pool, opts, |_| {}).await;
    let events = ["a", "b", "c", "d", "e"]
        .map(|t| event(t, "u1", "web"))
        .to_vec();
    assert_eq!(app.post_events(&app.key, &bulk(events)).await.status(), 202);
    app.wait_for_drain().await;

    let mut seen = Vec::new();
    let mut path = "/v1/analytics/events/daily?limit=2".to_owned();
    loop {
        let page = app.get_json(&app.key, &path).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["event_type"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/analytics/events/daily?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"].map(Value::from));
    app.shutdown().await;
}

/// Needs the pipeline's handlers.
#[sqlx::test(migrations = false)]
async fn analytics_are_cached_for_the_ttl(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(pool, opts, |s| s.cache_ttl = Duration::from_secs(60)).await;
    let first = app.get_json(&app.key, "/v1/analytics/events/summary").await;
    assert_eq!(first["total"], 0);
    assert_eq!(
        app.post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
            .await
            .status(),
        202
    );
    app.wait_for_drain().await;
    let cached = app.get_json(&app.key, "/v1/analytics/events/summary").await;
    assert_eq!(cached["total"], 0, "served from the cache");
    let from = chrono::Utc::now().date_naive() - chrono::Duration::days(30);
    let fresh = app
        .get_json(
            &app.key,
            &format!("/v1/analytics/events/summary?from={from}"),
        )
        .await;
    assert_eq!(
        fresh["total"], 1,
        "other parameters are another cache entry"
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn overlong_request_id_is_400(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .bulk_request(Some(&app.key))
        .header("x-request-id", "r".repeat(129))
        .json(&bulk(vec![event("click", "u1", "web")]))
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "x-request-id").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn database_outage_spools_the_batch_and_answers_202(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    app.close_database().await;
    let response = app
        .post_events(&app.key, &bulk(vec![event("click", "u1", "web"); 2]))
        .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 2);
    let spooled = std::fs::read_dir(&app.spool_dir)
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".spool.json")
        })
        .count();
    assert_eq!(spooled, 1);
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn database_outage_with_an_unwritable_spool_is_503(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    app.close_database().await;
    std::fs::remove_dir_all(&app.spool_dir).unwrap();
    let response = app
        .post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("spool cannot write"),
        "{body}"
    );
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn healthz_detailed_is_503_when_the_database_is_down(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    app.close_database().await;
    let response = app
        .client
        .get(format!("{}/healthz/detailed", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["database"]["ok"], false, "{body}");
    let live = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
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
