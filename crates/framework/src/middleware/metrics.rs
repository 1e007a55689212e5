//! [`MetricsMiddleware`]: counters and a duration histogram per queue through the `metrics`
//! crate.

use std::time::Instant;

use async_trait::async_trait;

use super::{Handled, Middleware, Next};
use crate::hooks::BatchInfo;

/// Events handled, by queue and outcome.
pub const EVENTS_HANDLED: &str = "conveyor_events_handled_total";
/// Seconds per `handle` call, by queue.
pub const HANDLE_DURATION: &str = "conveyor_handle_duration_seconds";

/// Records each `handle` call through the [`metrics`] facade (install any recorder or
/// exporter you like; without one the calls do nothing):
///
/// - the counter `conveyor_events_handled_total` with labels `queue` and `outcome`
///   (`delivered`, `retried`, `snoozed`, `dead`, `cancelled`), increased by the call's
///   [`Handled::counts`];
/// - the histogram `conveyor_handle_duration_seconds` with label `queue`: the call's
///   duration, the middleware inside this one and the handler included.
///
/// `queue` is the queue's display form (`event_type`, `event_type:routing_key`, with the
/// subscription after an `@`).
///
/// ```
/// # async fn run(store: conveyor::SqliteStore) -> conveyor::Result<()> {
/// let pool = conveyor::WorkerPool::builder(store)
///     .middleware(conveyor::middleware::MetricsMiddleware)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsMiddleware;

#[async_trait]
impl Middleware for MetricsMiddleware {
    async fn handle(&self, batch: &BatchInfo, next: Next<'_>) -> Handled {
        let started = Instant::now();
        let handled = next.run().await;
        let elapsed = started.elapsed().as_secs_f64();
        let queue = batch.queue.to_string();
        for (outcome, n) in handled.counts().labelled() {
            if n > 0 {
                metrics::counter!(EVENTS_HANDLED, "queue" => queue.clone(), "outcome" => outcome)
                    .increment(n as u64);
            }
        }
        metrics::histogram!(HANDLE_DURATION, "queue" => queue).record(elapsed);
        handled
    }
}
