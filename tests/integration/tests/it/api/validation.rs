//! Events that parse but are invalid: a 422 naming the event's index and field.

use conveyor_integration::event;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{api_only, assert_post_refused, bulk};

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
    let body = assert_post_refused(&app, &body, 422, "events[2].event_type").await;
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
    assert_post_refused(&app, &bulk(vec![bad]), 422, "events[0].attributes.note").await;
    let mut bad = event("click", "u1", "web");
    bad["actor_id"] = json!("u\u{0}1");
    assert_post_refused(&app, &bulk(vec![bad]), 422, "events[0].actor_id").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn future_timestamp_is_422(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let mut future = event("click", "u1", "web");
    future["timestamp"] = json!((chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    let body = assert_post_refused(&app, &bulk(vec![future]), 422, "events[0].timestamp").await;
    assert!(body.to_string().contains("not clamped"), "{body}");
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn empty_events_is_422(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    assert_post_refused(&app, &bulk(vec![]), 422, "events").await;
    app.shutdown().await;
}
