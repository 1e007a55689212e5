//! Middleware around `handle`: code that runs around every handler call of a pool
//! ([`PoolBuilder::middleware`](crate::PoolBuilder::middleware)) or of one handler
//! ([`HandlerOptions::middleware`](crate::HandlerOptions::middleware)), for spans, metrics,
//! timeouts, rate limits or error mapping.
//!
//! A [`Middleware`] gets the batch's [`BatchInfo`] and the rest of the chain as [`Next`];
//! it calls [`Next::run`] (or not: [`Next::reject`] skips the handler) and returns the
//! [`Handled`] result, which it may change: its `result` is what the batch's outcomes are
//! planned from, so mapping an error there is visible in the outcomes. Pool middleware runs
//! outside handler middleware, each list in registration order (the first registered is
//! outermost). The handler's panics and its `TIMEOUT` are caught inside the chain, so every
//! middleware sees them as errors; a middleware's own waits (a rate limit) do not count
//! toward `TIMEOUT`, and a panicking middleware retries the batch like a panicking handler.
//! `conveyor::testing::run_batch` runs the handler alone, without middleware.
//!
//! Two come with Conveyor: [`TracingMiddleware`] (a `conveyor.handle` span) and
//! [`MetricsMiddleware`] (counters and a histogram through the `metrics` crate).
//!
//! # Example: errors that say "permanent" dead-letter at once
//! ```
//! use conveyor::middleware::{Handled, Middleware, Next};
//! use conveyor::{BatchInfo, HandlerError};
//!
//! struct PermanentIsFatal;
//!
//! #[async_trait::async_trait]
//! impl Middleware for PermanentIsFatal {
//!     async fn handle(&self, _batch: &BatchInfo, next: Next<'_>) -> Handled {
//!         let mut handled = next.run().await;
//!         if let Err(HandlerError::Retry { error, .. }) = &handled.result {
//!             if error.contains("permanent") {
//!                 handled.result = Err(HandlerError::fail(error.clone()));
//!             }
//!         }
//!         handled
//!     }
//! }
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::context::Mark;
use crate::handler::HandlerError;
use crate::hooks::{BatchInfo, OutcomeCounts};

mod metrics;
mod tracing;

pub use self::metrics::{MetricsMiddleware, EVENTS_HANDLED, HANDLE_DURATION};
pub use self::tracing::TracingMiddleware;

/// A list of middleware, outermost first.
#[derive(Clone, Default)]
pub(crate) struct Chain(pub(crate) Vec<Arc<dyn Middleware>>);

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} middleware", self.0.len())
    }
}

/// Code around a handler's `handle` call. See the [module docs](self).
#[async_trait]
pub trait Middleware: Send + Sync + 'static {
    /// Handle `batch` by running `next` (the rest of the chain, the handler last), or not.
    async fn handle(&self, batch: &BatchInfo, next: Next<'_>) -> Handled;
}

/// The rest of a middleware chain: the middleware registered inside this one, then the
/// handler.
pub struct Next<'a> {
    rest: &'a [Arc<dyn Middleware>],
    batch: &'a BatchInfo,
    items: usize,
    handler: BoxFuture<'a, Handled>,
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("middleware", &self.rest.len())
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

impl<'a> Next<'a> {
    pub(crate) fn new(
        chain: &'a [Arc<dyn Middleware>],
        batch: &'a BatchInfo,
        items: usize,
        handler: BoxFuture<'a, Handled>,
    ) -> Self {
        Self {
            rest: chain,
            batch,
            items,
            handler,
        }
    }

    /// Run the rest of the chain and the handler.
    pub async fn run(self) -> Handled {
        match self.rest.split_first() {
            Some((first, rest)) => {
                let next = Next { rest, ..self };
                first.handle(next.batch, next).await
            }
            None => self.handler.await,
        }
    }

    /// Skip the rest of the chain and the handler: the batch fails with `error` (retried or
    /// dead-lettered like a handler's `Err`), e.g. from a rate limiter.
    pub fn reject(self, error: HandlerError) -> Handled {
        Handled {
            result: Err(error),
            items: self.items,
            marks: OutcomeCounts::default(),
        }
    }
}

/// What a `handle` call came to: the handler's result and the per-item marks it set.
#[derive(Debug)]
pub struct Handled {
    /// `Ok`: every item not marked through the context is delivered; `Err`: the whole batch
    /// is retried or dead-lettered and the handler's writes and emits are rolled back.
    /// Replace it to map errors. Turning an `Err` into `Ok` commits whatever the handler had
    /// written before it failed.
    pub result: Result<(), HandlerError>,
    items: usize,
    /// Items marked otherwise than delivered (only `delivered` stays zero).
    marks: OutcomeCounts,
}

impl Handled {
    /// The handler's `result` for a batch of `items` after `marks`.
    pub(crate) fn new<'m>(
        result: Result<(), HandlerError>,
        items: usize,
        marks: impl Iterator<Item = &'m Mark>,
    ) -> Self {
        let mut counts = OutcomeCounts::default();
        for mark in marks {
            match mark {
                Mark::Retry { .. } => counts.retried += 1,
                Mark::Fail { .. } => counts.dead += 1,
                Mark::Snooze { .. } => counts.snoozed += 1,
                Mark::Cancel { .. } => counts.cancelled += 1,
            }
        }
        Self {
            result,
            items,
            marks: counts,
        }
    }

    /// How many of the handled items get each outcome from `result` and the marks. A retry
    /// past the handler's `MAX_RETRIES` still counts as retried here (it is dead-lettered
    /// when the outcomes are planned), and events that never reached the handler (payloads
    /// that do not decode) are not counted.
    pub fn counts(&self) -> OutcomeCounts {
        match &self.result {
            Ok(()) => OutcomeCounts {
                delivered: self.items.saturating_sub(self.marks.total()),
                ..self.marks
            },
            Err(HandlerError::Retry { .. }) => OutcomeCounts {
                retried: self.items,
                ..OutcomeCounts::default()
            },
            Err(HandlerError::Fail { .. }) => OutcomeCounts {
                dead: self.items,
                ..OutcomeCounts::default()
            },
        }
    }
}
