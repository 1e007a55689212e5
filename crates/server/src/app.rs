//! [`app`]: the HTTP API's router and its middleware, over the shared [`AppState`].

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::Request as AxumRequest;
use axum::http::{header, HeaderValue, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use conveyor_handlers::PipelineStore;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api_error::ApiError;
use crate::routes::served::Served;
use crate::routes::{events, health, ops, query, search};
use crate::state::{AppState, REQUEST_ID};

/// The `Retry-After` (seconds) of the 503s answered for a timed-out or shed request.
const RETRY_AFTER_SECS: u32 = 1;

/// Longest `X-Request-ID` a client may send.
const MAX_REQUEST_ID: usize = 128;

/// The API: ingestion, analytics, search and health, with request ids (a client's is
/// validated), tracing, a request timeout, a bound on requests in flight and panic recovery.
///
/// Past the timeout ([`crate::http::HttpLimits::request_timeout`]) a request is answered 503 with
/// `Retry-After` (the server was too slow; 408 would blame the client). Past
/// [`crate::http::HttpLimits::max_requests_in_flight`] requests are shed with 503 and `Retry-After` too,
/// not 429: the bound is the server's capacity, not a per-client rate. `/healthz` is not
/// counted against it, so liveness stays answerable under load.
pub(crate) fn app<S: PipelineStore>(state: AppState<S>) -> Router {
    let limits = state.http;
    let in_flight = Arc::new(Semaphore::new(limits.max_requests_in_flight.max(1)));
    let Served { router, .. } = limited_routes::<S>();
    let Served { router: open, .. } = open_routes::<S>();
    let api = router
        .fallback(|| async { ApiError::NotFound })
        // every route above shares one bound (the layer wraps each route; the semaphore is shared)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight)),
        )
        .merge(open)
        .merge(crate::dashboard::router())
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // inside the routes: the route template (`MatchedPath`) is known
        .layer(middleware::from_fn(crate::prometheus::http::track))
        .with_state(state);
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
    });
    let timeout = limits.request_timeout;
    api.layer(
        ServiceBuilder::new()
            // first, so an invalid id is neither logged nor echoed
            .layer(middleware::from_fn(valid_request_id))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(crate::api_error::panic_response))
            .layer(HandleErrorLayer::new(move |e: BoxError| async move {
                timed_out(e, timeout)
            }))
            .layer(TimeoutLayer::new(timeout)),
    )
}

/// The routes under the in-flight bound: ingestion, reads, detailed health, operations.
fn limited_routes<S: PipelineStore>() -> Served<AppState<S>> {
    Served::new()
        .post("/v1/events/bulk", events::bulk::<S>)
        .get("/v1/events/raw", query::raw::<S>)
        .get("/v1/analytics/events/daily", query::daily::<S>)
        .get("/v1/analytics/events/summary", query::summary::<S>)
        .get("/v1/analytics/event-types", query::event_types::<S>)
        .get("/v1/search", search::keyword::<S>)
        .get("/v1/search/similar", search::similar::<S>)
        .get("/healthz/detailed", health::detailed::<S>)
        .get("/v1/ops", ops::info::<S>)
        .get("/v1/queues", ops::queues::list::<S>)
        .get("/v1/queues/{event_type}", ops::queues::one::<S>)
        .post("/v1/queues/{event_type}/pause", ops::queues::pause::<S>)
        .post("/v1/queues/{event_type}/resume", ops::queues::resume::<S>)
        .post("/v1/queues/{event_type}/replay", ops::queues::replay::<S>)
        .post("/v1/queues/{event_type}/purge", ops::queues::purge::<S>)
        .get(
            "/v1/queues/{event_type}/parked-keys",
            ops::queues::parked_keys::<S>,
        )
        .post(
            "/v1/queues/{event_type}/parked-keys/{key}/skip",
            ops::queues::skip_key::<S>,
        )
        .get("/v1/events/{id}", ops::events::one::<S>)
        .post("/v1/events/replay", ops::events::replay::<S>)
        .post("/v1/events/cancel", ops::events::cancel::<S>)
        .get("/v1/dead-letters", ops::events::dead_letters::<S>)
}

/// The routes outside the in-flight bound, so they stay answerable under load: liveness,
/// metrics and the OpenAPI document.
fn open_routes<S: PipelineStore>() -> Served<AppState<S>> {
    Served::new()
        .get("/healthz", health::live)
        .get("/metrics", crate::prometheus::metrics::<S>)
        .get("/openapi.json", crate::openapi::document)
}

/// Every (method, path) the router serves, which the OpenAPI test compares with the document.
#[cfg(test)]
pub(crate) fn served_routes<S: PipelineStore>() -> Vec<(&'static str, &'static str)> {
    let mut routes = limited_routes::<S>().routes;
    routes.extend(open_routes::<S>().routes);
    routes
}

/// Refuse a client-sent `X-Request-ID` that is not 1 to [`MAX_REQUEST_ID`] visible ASCII
/// characters (`!` to `~`) with a 400 naming `x-request-id`, before any route runs.
async fn valid_request_id(request: AxumRequest, next: Next) -> Response {
    if let Some(id) = request.headers().get(REQUEST_ID) {
        let bytes = id.as_bytes();
        let valid =
            (1..=MAX_REQUEST_ID).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic);
        if !valid {
            return ApiError::bad(
                "x-request-id",
                format!("X-Request-ID must be 1 to {MAX_REQUEST_ID} visible ASCII characters"),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The answer of a request the timeout layer gave up on: 503 with `Retry-After`.
fn timed_out(e: BoxError, timeout: Duration) -> Response {
    if e.is::<tower::timeout::error::Elapsed>() {
        let message = format!("the request took longer than {} ms", timeout.as_millis());
        retry_later(ApiError::Unavailable(message))
    } else {
        ApiError::Internal(anyhow::anyhow!("request failed: {e}")).into_response()
    }
}

/// The answer of a request shed past the in-flight bound: 503 with `Retry-After`.
async fn overloaded(e: BoxError) -> Response {
    if e.is::<tower::load_shed::error::Overloaded>() {
        retry_later(ApiError::Unavailable(
            "the server is handling too many requests; retry later".into(),
        ))
    } else {
        ApiError::Internal(anyhow::anyhow!("request failed: {e}")).into_response()
    }
}

/// `error`'s response with `Retry-After: RETRY_AFTER_SECS`.
fn retry_later(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}
