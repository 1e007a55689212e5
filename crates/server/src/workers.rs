//! The pipeline's worker pool, registered in one place: the fan-out and the handler of every
//! configured backend. A conflicting registration is an error from `build`, never a panic.

use conveyor::{PgStore, WorkerPool};
use conveyor_handlers::Pipeline;

/// The pool of `pipeline`'s handlers over `store` (the server's outbox namespace).
///
/// Its workers need `fan-out 2 + raw 2 + rollup 1 + keyword 2 + vector 1` connections plus
/// the pool's reserve of 4; `serve` sizes the database pool for that and the API.
pub(crate) fn build_pool(
    store: &PgStore,
    pipeline: &Pipeline,
) -> conveyor::Result<WorkerPool<PgStore>> {
    conveyor_handlers::register_all(WorkerPool::builder(store.clone()), pipeline).build()
}
