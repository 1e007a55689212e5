//! What every backend's `impl EventHandler` of the four storage handlers shares: the
//! payload, the queue, the batch size and the retries, so a record is consumed the same way
//! on Postgres and on SQLite. Only `handle` is each backend's.

/// The items of an `impl EventHandler<S>` for a storage handler but `handle`: it consumes
/// [`IndexRecord`](crate::IndexRecord)s routed to the handler's `BACKEND`, at most
/// `RECORDS_PER_BATCH` a batch, and retries with its `policy`.
macro_rules! storage_handler_items {
    () => {
        type Event = $crate::events::IndexRecord;
        const ROUTING_KEY: Option<&'static str> = Some(Self::BACKEND.routing_key());
        const BATCH_SIZE: usize = Self::RECORDS_PER_BATCH;

        fn backoff(&self, attempt: u32) -> std::time::Duration {
            self.policy.backoff(attempt)
        }

        fn max_retries(&self) -> u32 {
            self.policy.max_retries
        }
    };
}

pub(crate) use storage_handler_items;
