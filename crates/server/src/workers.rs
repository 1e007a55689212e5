//! The pipeline's worker pool, registered in one place: the fan-out and the handler of every
//! configured backend. A conflicting registration is an error from `build`, never a panic.

use std::time::Duration;

use conveyor::WorkerPool;
use conveyor_handlers::{Pipeline, PipelineStore};

/// How long delivered outbox rows are kept. The pipeline's payloads are whole request chunks
/// (up to 1,000 events, three index records per chunk), so the framework's 10-minute
/// default would keep gigabytes at full ingest rate. Nothing downstream needs them: every
/// backend deduplicates on the event key, not on outbox rows.
const DELIVERED_RETENTION: Duration = Duration::from_secs(60);

/// The pool of `pipeline`'s handlers over `store` (the server's outbox namespace), with the
/// framework's `MetricsMiddleware` (handled counts and handle durations on `/metrics`).
///
/// Its workers need `fan-out 1 + raw 1 + rollup 1 + keyword 2 + vector 1` connections plus
/// the pool's reserve of 4; `serve` sizes the database pool for that and the API.
pub(crate) fn build_pool<S: PipelineStore>(
    store: &S,
    pipeline: &Pipeline,
) -> conveyor::Result<WorkerPool<S>> {
    let builder = WorkerPool::builder(store.clone())
        .delivered_retention(DELIVERED_RETENTION)
        .middleware(conveyor::middleware::MetricsMiddleware);
    conveyor_handlers::register_all(builder, pipeline).build()
}
