//! [`AppState`]: what every route shares. Its own module so that `app` (the router) and
//! `routes/*` both depend on it without depending on each other.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::http::HeaderName;
use conveyor_handlers::{Embedder, PipelineStore};

use crate::auth::Keys;
use crate::cache::ResponseCache;
use crate::http::HttpLimits;
use crate::ingest::{Budget, IngestLog};
use crate::settings::{Limits, Settings};

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
    /// Keys of the operator routes (`/healthz/detailed`); none configured: those routes
    /// answer 401.
    pub(crate) operator_keys: Arc<Keys>,
    /// Whether the operations API only reads (`--ops-read-only`).
    pub(crate) ops_read_only: bool,
    /// The process's Prometheus handle, which `/metrics` renders.
    pub(crate) metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The ingestion log the bulk route appends to.
    pub(crate) log: IngestLog,
    /// Request bytes held at once by every ingestion request.
    pub(crate) budget: Budget,
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
    /// The HTTP limits: the router uses the request timeout and the in-flight bound, the
    /// serving loop (`http::serve`) the rest.
    pub(crate) http: HttpLimits,
}

/// What the [`Tenant`](crate::auth::Tenant) extractor reads: the tenants' keys.
impl<S> FromRef<AppState<S>> for Arc<Keys> {
    fn from_ref(state: &AppState<S>) -> Self {
        state.keys.clone()
    }
}

impl<S: PipelineStore> AppState<S> {
    pub(crate) fn new(store: S, settings: &Settings, log: IngestLog) -> Self {
        Self {
            keys: Arc::new(Keys::new(&settings.api_keys)),
            operator_keys: Arc::new(Keys::new(
                &settings
                    .operator_keys
                    .iter()
                    .map(|k| (k.clone(), "operator".to_owned()))
                    .collect(),
            )),
            ops_read_only: settings.ops_read_only,
            metrics: crate::prometheus::handle(),
            log,
            budget: Budget::new(settings.limits.max_in_flight_bytes),
            limits: settings.limits,
            max_future: settings.max_future,
            retention_days: settings.partitions.retention_days,
            cache: ResponseCache::new(settings.cache_ttl, settings.api_keys.values()),
            embedder: settings.pipeline.embedder.clone(),
            http: settings.http,
            store,
        }
    }
}
