//! Health: `GET /healthz` (liveness: the process answers; no dependency is checked) and
//! `GET /healthz/detailed` (the database, the queue backlog, the default partition and the
//! spool; 503 with `"status": "degraded"` when the database check fails).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use conveyor_handlers::PipelineStore;
use serde_json::{json, Value};

use crate::app::AppState;

/// How long the database check may take before it counts as failed.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: always `200 {"status": "ok"}`.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness with details: `200 {"status": "ok", "database": {"ok": true}, "backlog": {…},
/// "default_partition_rows": n, "spool_pending": n}`, or 503 `"degraded"`.
pub(crate) async fn detailed<S: PipelineStore>(
    State(state): State<AppState<S>>,
) -> (StatusCode, Json<Value>) {
    let spool_pending = state.spool.pending();
    let checked = tokio::time::timeout(DB_CHECK_TIMEOUT, async {
        state.store.ping().await?;
        let stats = state.store.stats().await?;
        let default_rows = state.store.default_rows().await?;
        Ok::<_, anyhow::Error>((stats, default_rows))
    })
    .await;
    let failure = match checked {
        Ok(Ok((stats, default_rows))) => {
            let sum = |f: fn(&conveyor::QueueStats) -> i64| stats.iter().map(f).sum::<i64>();
            let oldest = stats
                .iter()
                .map(|s| s.oldest_due_age_secs)
                .fold(0.0, f64::max);
            let body = json!({
                "status": "ok",
                "database": { "ok": true },
                "backlog": {
                    "pending": sum(|s| s.pending),
                    "in_flight": sum(|s| s.in_flight),
                    "retrying": sum(|s| s.retrying),
                    "dead": sum(|s| s.dead),
                    "oldest_due_age_secs": oldest,
                },
                "default_partition_rows": default_rows,
                "spool_pending": spool_pending,
            });
            return (StatusCode::OK, Json(body));
        }
        Ok(Err(e)) => {
            tracing::warn!(error.cause_chain = ?e, error.message = %e, "health check: database failed");
            "database check failed"
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer within 2s");
            "database did not answer within 2s"
        }
    };
    let body = json!({
        "status": "degraded",
        "database": { "ok": false, "error": failure },
        "spool_pending": spool_pending,
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}
