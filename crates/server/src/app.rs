//! [`app`]: the HTTP API's router and middleware, and [`AppState`], what every route shares.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use conveyor_handlers::{Embedder, PipelineStore};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api_error::ApiError;
use crate::auth::Keys;
use crate::cache::ResponseCache;
use crate::routes::committer::Committer;
use crate::routes::{events, health, query, search};
use crate::settings::{Limits, Settings};
use crate::spool::Spool;

/// How long one request may take before it is answered 408; bounds graceful shutdown too.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The request-id header, set when absent and echoed on every response.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every route shares, over the server's backend `S`. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState<S> {
    /// The server's store: its outbox namespace is the server's, not a tenant's; the
    /// pipeline's reads take the tenant explicitly.
    pub(crate) store: S,
    /// API key → tenant namespace, looked up in constant time.
    pub(crate) keys: Arc<Keys>,
    /// Where accepted batches wait while the database is down.
    pub(crate) spool: Arc<Spool>,
    /// Request size limits.
    pub(crate) limits: Limits,
    /// How far ahead of now an event's timestamp may be.
    pub(crate) max_future: Duration,
    /// Days of raw events kept: older timestamps would be dropped at once, so they are refused.
    pub(crate) retention_days: u32,
    /// The TTL cache of analytics responses.
    pub(crate) cache: ResponseCache,
    /// The vector backend's embedder, for similarity search.
    pub(crate) embedder: Arc<dyn Embedder>,
    /// The ingestion route's group-commit writers, over the configured backends.
    pub(crate) committer: Committer,
}

impl<S: PipelineStore> AppState<S> {
    pub(crate) fn new(store: S, settings: &Settings, spool: Arc<Spool>) -> Self {
        Self {
            keys: Arc::new(Keys::new(&settings.api_keys)),
            spool,
            limits: settings.limits,
            max_future: settings.max_future,
            retention_days: settings.partitions.retention_days,
            cache: ResponseCache::new(settings.cache_ttl, settings.api_keys.values()),
            embedder: settings.pipeline.embedder.clone(),
            committer: Committer::start(
                store.clone(),
                settings.pipeline.backends.clone().into(),
                S::ACCEPT_WRITERS,
            ),
            store,
        }
    }
}

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
