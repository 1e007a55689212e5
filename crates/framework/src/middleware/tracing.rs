//! [`TracingMiddleware`]: a `conveyor.handle` span around each `handle` call.

use async_trait::async_trait;
use tracing::field::{display, Empty};
use tracing::Instrument;

use super::{Handled, Middleware, Next};
use crate::hooks::BatchInfo;

/// Opens an `info`-level span named `conveyor.handle` around each `handle` call, inside the
/// worker's `conveyor.batch` span, with the fields `handler`, `queue`, `batch_size` and,
/// recorded when the call returns, `delivered`, `retried`, `snoozed`, `dead`, `cancelled`
/// (as [`Handled::counts`] reports them) and `error` (the batch's error, if any). The
/// handler's own events and spans nest inside it.
///
/// ```
/// # async fn run(store: conveyor::SqliteStore) -> conveyor::Result<()> {
/// let pool = conveyor::WorkerPool::builder(store)
///     .middleware(conveyor::middleware::TracingMiddleware)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingMiddleware;

#[async_trait]
impl Middleware for TracingMiddleware {
    async fn handle(&self, batch: &BatchInfo, next: Next<'_>) -> Handled {
        let span = tracing::info_span!(
            "conveyor.handle",
            handler = batch.handler,
            queue = %batch.queue,
            batch_size = batch.events.len(),
            delivered = Empty,
            retried = Empty,
            snoozed = Empty,
            dead = Empty,
            cancelled = Empty,
            error = Empty,
        );
        let handled = next.run().instrument(span.clone()).await;
        if !span.is_disabled() {
            for (field, n) in handled.counts().labelled() {
                span.record(field, n);
            }
            if let Err(e) = &handled.result {
                span.record("error", display(e));
            }
        }
        handled
    }
}
