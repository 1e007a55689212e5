//! `/metrics`: the server's Prometheus exposition, operator key only.
//!
//! One `metrics` recorder per process ([`handle`]): the first server installs a Prometheus
//! recorder as the global one (the framework's `MetricsMiddleware` and every `metrics::`
//! call record into it) and every later server of the process (tests start several) shares
//! its handle. Metric names start with `conveyor_`; labels are bounded: queue labels come
//! from the server's own registered handlers, HTTP labels from the route templates.
//!
//! - `sampler` — per-queue gauges and totals, the ingestion log and the connection pool,
//!   read every [`sampler::INTERVAL`].
//! - `http` — request counts and latency by route template, method and status class.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use conveyor_handlers::PipelineStore;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::api_error::ApiError;
use crate::routes::ops::caller::Role;
use crate::routes::ops::OpsCaller;
use crate::state::AppState;

pub(crate) mod http;
pub(crate) mod sampler;

/// Histogram buckets, in seconds, of every duration (HTTP requests, handler calls).
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process's Prometheus handle, installing the global recorder on the first call. When
/// the application installed another global recorder first, the handle renders only what
/// is recorded into it directly (nothing), and a warning says so.
pub(crate) fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// `GET /metrics`: the Prometheus text format; 401 without a known key, 403 for a tenant key.
pub(crate) async fn metrics<S: PipelineStore>(
    State(state): State<AppState<S>>,
    caller: OpsCaller<S>,
) -> Result<Response, ApiError> {
    if caller.role != Role::Operator {
        return Err(ApiError::Forbidden("/metrics needs an operator key".into()));
    }
    let text = state.metrics.render();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response())
}
