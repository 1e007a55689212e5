//! The one `impl EventHandler` of each of the four storage handlers, on every store: it
//! consumes [`IndexRecord`]s routed to the handler's [`Backend`], at most the handler's
//! records a batch (both in the table at the end), retries with the handler's `policy`, and
//! hands each batch to the store's [`WriteBatch`], the only part that is each backend's.

use std::future::Future;

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError, Store};

use crate::events::IndexRecord;
use crate::{Backend, KeywordIndexHandler, RawStoreHandler, RollupHandler, VectorIndexHandler};

/// A batch of a storage handler.
pub(crate) type Records = Batch<IndexRecord>;

/// What a storage handler's batch ends in.
pub(crate) type Written = Result<(), HandlerError>;

/// How store `S` writes one storage handler's batches: in the transaction that completes the
/// batch (`ctx.db()`), so the batch's outcome and its rows commit together. Never called for
/// a batch without events. (Implemented with `async fn`.)
pub(crate) trait WriteBatch<S: Store> {
    /// Store `batch`'s events.
    fn write(
        &self,
        batch: &Records,
        ctx: &mut Context<'_, S>,
    ) -> impl Future<Output = Written> + Send;
}

/// `impl EventHandler<S>` for each handler, wherever `S` has its [`WriteBatch`]: the
/// handler's backend (its routing key) and the most records one of its batches holds.
macro_rules! storage_handlers {
    ($($handler:ident: $backend:ident, $records_per_batch:literal;)+) => {$(
        #[async_trait]
        impl<S: Store> EventHandler<S> for $handler
        where
            $handler: WriteBatch<S>,
        {
            type Event = IndexRecord;
            const ROUTING_KEY: Option<&'static str> = Some(Backend::$backend.routing_key());
            const BATCH_SIZE: usize = $records_per_batch;

            async fn handle(&self, batch: Records, ctx: &mut Context<'_, S>) -> Written {
                if batch.iter().all(|item| item.payload.events.is_empty()) {
                    return Ok(());
                }
                self.write(&batch, ctx).await
            }

            fn backoff(&self, attempt: u32) -> std::time::Duration {
                self.policy.backoff(attempt)
            }

            fn max_retries(&self) -> u32 {
                self.policy.max_retries
            }
        }
    )+};
}

storage_handlers! {
    RawStoreHandler: Raw, 20;
    RollupHandler: Rollup, 50;
    KeywordIndexHandler: Keyword, 20;
    VectorIndexHandler: Vector, 100;
}
