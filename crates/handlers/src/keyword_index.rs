//! [`KeywordIndexHandler`]: `IndexRecord[keyword]` → `search_documents`; its `impl
//! EventHandler` and [`keyword_search`](crate::keyword_search) are each backend's.

use crate::policy::RetryPolicy;

/// Indexes the events of `keyword` [`IndexRecord`](crate::IndexRecord)s for full-text search.
///
/// - **Consumes** [`IndexRecord`](crate::IndexRecord)s published with routing key `"keyword"` (by
///   [`PipelineStore::accept`](crate::PipelineStore::accept) or
///   [`FanOutToIndexBackends`](crate::FanOutToIndexBackends)), up to 20 records per batch.
/// - **Writes** one `search_documents` row per event: its type, source and
///   [`search_text`](crate::IngestedEvent::search_text) (capped at 64 KiB), whose `tsvector`
///   Postgres derives and a GIN index serves to [`keyword_search`](crate::keyword_search). It emits no events.
/// - **Idempotent**: rows are keyed by `(namespace, event_id, timestamp)` and inserted with
///   `on conflict do nothing` in the transaction that completes the batch, so a duplicate
///   event, a retry or a batch reprocessed after a crash never stores a document twice, and
///   a failed batch leaves nothing behind.
///
/// # Example
/// ```
/// use conveyor::WorkerPool;
/// use conveyor_handlers::{KeywordIndexHandler, RetryPolicy};
///
/// # fn build(store: conveyor::PgStore) -> conveyor::Result<()> {
/// let pool = WorkerPool::builder(store)
///     .register(KeywordIndexHandler::new(RetryPolicy::default()))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KeywordIndexHandler {
    pub(crate) policy: RetryPolicy,
}

impl KeywordIndexHandler {
    /// A handler retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}
