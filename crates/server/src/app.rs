//! [`app`]: the HTTP API's router and its middleware, over the shared [`AppState`].

use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use conveyor_handlers::PipelineStore;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api_error::ApiError;
use crate::routes::{events, health, query, search};
use crate::state::{AppState, REQUEST_ID};

/// How long one request may take before it is answered 408; bounds graceful shutdown too.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The API: ingestion, analytics, search and health, with request ids, tracing, a request
/// timeout and panic recovery.
pub(crate) fn app<S: PipelineStore>(state: AppState<S>) -> Router {
    let api = Router::new()
        .route("/v1/events/bulk", post(events::bulk::<S>))
        .route("/v1/events/raw", get(query::raw::<S>))
        .route("/v1/analytics/events/daily", get(query::daily::<S>))
        .route("/v1/analytics/events/summary", get(query::summary::<S>))
        .route("/v1/analytics/event-types", get(query::event_types::<S>))
        .route("/v1/search", get(search::keyword::<S>))
        .route("/v1/search/similar", get(search::similar::<S>))
        .route("/healthz", get(health::live))
        .route("/healthz/detailed", get(health::detailed::<S>))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
    });
    api.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(crate::api_error::panic_response))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIMEOUT,
            )),
    )
}
