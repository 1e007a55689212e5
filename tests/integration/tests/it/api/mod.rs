//! The HTTP API of the real server, in-process on a free port: every 4xx names what is
//! wrong, request ids are echoed, health answers, and tenants never see each other's data.
//!
//! `ingest`: `POST /v1/events/bulk` (auth, body parsing, limits, gzip, request ids, outage);
//! `validation`: per-event 422s; `query`: analytics, raw and search reads; `health`:
//! `/healthz` and unknown routes.
//!
//! Tests whose name ends in `_on_sqlite` run the same scenario as their namesake on the
//! embedded SQLite backend.

mod health;
mod http;
mod ingest;
mod ingest_log;
mod metrics;
mod ops;
mod ops_access;
mod query;
mod validation;

use conveyor_integration::{spawn_app, spawn_sqlite_app, TestApp};
use conveyor_server::Settings;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The server without workers: enough for everything that never reaches a handler.
async fn api_only(pool: PgPoolOptions, opts: PgConnectOptions) -> TestApp {
    api_with(pool, opts, |_| {}).await
}

/// [`api_only`] with its settings adjusted by `tweak` (a limit, say).
async fn api_with(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app(pool, opts, |s| {
        s.run_workers = false;
        tweak(s);
    })
    .await
}

/// The server with its workers, as deployed (the operations and metrics tests).
async fn with_workers(pool: PgPoolOptions, opts: PgConnectOptions) -> TestApp {
    spawn_app(pool, opts, |_| {}).await
}

/// [`with_workers`] on a fresh SQLite file.
async fn with_workers_sqlite() -> TestApp {
    spawn_sqlite_app(|_| {}).await
}

/// [`api_only`] on a fresh SQLite file.
async fn api_only_sqlite() -> TestApp {
    spawn_sqlite_app(|s| s.run_workers = false).await
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

/// Post `body` with the tenant's key and assert the refusal: `status`, a JSON error body
/// naming `field`; returns the body.
async fn assert_post_refused(app: &TestApp, body: &Value, status: u16, field: &str) -> Value {
    assert_error(app.post_events(&app.key, body).await, status, field).await
}

/// Assert the status and that the JSON error body's message contains `text`.
async fn assert_error_says(response: reqwest::Response, status: u16, text: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("a JSON error body");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(text), "expected {text:?} in {body}");
}

fn bulk(events: Vec<Value>) -> Value {
    json!({ "events": events })
}
