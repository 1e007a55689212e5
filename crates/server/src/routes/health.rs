//! Health: `GET /healthz` (liveness: the process answers; no dependency is checked) and
//! `GET /healthz/detailed` (operator key only: the database, the ingestion log's depth, lag
//! and failures, and the default partition; 503 with `"status": "degraded"` when the
//! database check fails, the log cannot write, or the log is near its capacity).
//!
//! The detailed check is cheap: one `select 1`-class ping and the default partition's row
//! count, never a scan of the outbox; `?backlog=true` adds the outbox's counts (a scan, for
//! tools such as `conveyor bench ingest --target` that wait for the pipeline to catch up).

use std::time::Duration;

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use conveyor_handlers::PipelineStore;
use serde_json::{json, Value};

use super::Params;
use crate::api_error::ApiError;
use crate::state::AppState;

/// How long the database check may take before it counts as failed.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The log counts as near its capacity past this fill.
const NEAR_CAPACITY: f64 = 0.9;

/// Liveness: always `200 {"status": "ok"}`.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness with details, for operators: `200 {"status": "ok", "database": {"ok": true},
/// "ingest_log": {…}, "default_partition_rows": n}`, or 503 `"degraded"` with `problems`.
pub(crate) async fn detailed<S: PipelineStore>(
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    params: Params,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    operator(&state, &headers)?;
    params.only(&["backlog"])?;
    let backlog = match params.text("backlog").as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(ApiError::bad("backlog", "`backlog` must be true or false")),
    };
    let log = state.log.status();
    let checked = tokio::time::timeout(DB_CHECK_TIMEOUT, async {
        state.store.ping().await?;
        state.store.default_rows().await
    })
    .await;
    let mut problems = Vec::new();
    let database = match checked {
        Ok(Ok(default_rows)) => json!({ "ok": true, "default_partition_rows": default_rows }),
        Ok(Err(e)) => {
            tracing::warn!(error.cause_chain = ?e, error.message = %e, "health check: database failed");
            problems.push("database check failed");
            json!({ "ok": false, "error": "database check failed" })
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer within 2s");
            problems.push("database did not answer within 2s");
            json!({ "ok": false, "error": "database did not answer within 2s" })
        }
    };
    if log.write_error.is_some() {
        problems.push("the ingestion log cannot write");
    }
    if log.fill >= NEAR_CAPACITY {
        problems.push("the ingestion log is near its capacity");
    }
    let (status, code) = if problems.is_empty() {
        ("ok", StatusCode::OK)
    } else {
        ("degraded", StatusCode::SERVICE_UNAVAILABLE)
    };
    let mut body = json!({
        "status": status,
        "problems": problems,
        "database": database,
        "ingest_log": log,
    });
    if backlog && problems.is_empty() {
        body["backlog"] = outbox_backlog(&state).await?;
    }
    Ok((code, Json(body)))
}

/// The outbox's counts summed over its queues: a scan of the server's namespace, so only on
/// request (`?backlog=true`), never in the regular check.
async fn outbox_backlog<S: PipelineStore>(state: &AppState<S>) -> Result<Value, ApiError> {
    let stats = state.store.stats().await.map_err(ApiError::internal)?;
    let sum = |f: fn(&conveyor::QueueStats) -> i64| stats.iter().map(f).sum::<i64>();
    Ok(json!({
        "pending": sum(|s| s.pending),
        "in_flight": sum(|s| s.in_flight),
        "retrying": sum(|s| s.retrying),
        "dead": sum(|s| s.dead),
    }))
}

/// 401 unless the request carries one of the operator keys (`Authorization: Bearer <key>`),
/// compared in constant time.
fn operator<S>(state: &AppState<S>, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(crate::auth::bearer)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "an operator key is required: send `Authorization: Bearer <operator key>`".into(),
            )
        })?;
    if state.operator_keys.tenant(presented).is_some() {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("unknown operator key".into()))
    }
}
