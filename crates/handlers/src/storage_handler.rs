//! The one `impl EventHandler` of each of the four storage handlers, on every store: it
//! consumes [`IndexRecord`]s routed to the handler's `BACKEND`, at most `RECORDS_PER_BATCH`
//! a batch, retries with the handler's `policy`, and hands each batch to the store's
//! [`WriteBatch`], the only part that is each backend's.

use std::future::Future;

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError, Store};

use crate::events::IndexRecord;
use crate::{KeywordIndexHandler, RawStoreHandler, RollupHandler, VectorIndexHandler};

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

/// `impl EventHandler<S>` for each handler, wherever `S` has its [`WriteBatch`].
macro_rules! storage_handlers {
    ($($handler:ident),+) => {$(
        #[async_trait]
        impl<S: Store> EventHandler<S> for $handler
        where
            $handler: WriteBatch<S>,
        {
            type Event = IndexRecord;
            const ROUTING_KEY: Option<&'static str> = Some(Self::BACKEND.routing_key());
            const BATCH_SIZE: usize = Self::RECORDS_PER_BATCH;

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

storage_handlers!(
    RawStoreHandler,
    RollupHandler,
    KeywordIndexHandler,
    VectorIndexHandler
);
