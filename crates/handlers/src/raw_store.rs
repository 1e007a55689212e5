//! [`RawStoreHandler`]: `IndexRecord[raw]` → `events_raw`; its `impl EventHandler` is each
//! backend's (`postgres::raw_store`, `sqlite::raw_store`).

use conveyor::Batch;

use crate::events::{first_of_each, IndexRecord, IngestedEvent};
use crate::policy::RetryPolicy;

/// Stores every event of `raw` [`IndexRecord`]s in `events_raw`, day-partitioned on the
/// event's timestamp (see [`PartitionManager`](crate::PartitionManager)).
///
/// - **Consumes** [`IndexRecord`] with routing key `raw`, up to 20 records per batch. The
///   server's API stores events itself ([`PipelineStore::accept`](crate::PipelineStore::accept));
///   these records come from [`FanOutToIndexBackends`](crate::FanOutToIndexBackends), for
///   batches spooled during an outage.
/// - **Emits** nothing.
/// - **Writes** one bulk statement per batch, in the transaction that completes the batch:
///   `insert … select * from unnest($1::text[], $2::uuid[], …) on conflict do nothing`.
///   Unnesting parallel arrays is as fast a bulk path as `COPY` at these batch sizes, and
///   unlike `COPY` it deduplicates against stored rows in the same statement, with no
///   temporary table to copy into first.
/// - **Idempotent**: the primary key `(namespace, event_id, ts)` drops every event already
///   stored, and the rows commit together with the batch's outcome, so a retried or
///   reprocessed batch (after a crash, a lost lease, a replay) stores nothing twice. An
///   event repeated inside one batch is reduced to its first occurrence before the insert.
#[derive(Debug, Clone)]
pub struct RawStoreHandler {
    pub(crate) policy: RetryPolicy,
}

impl RawStoreHandler {
    /// A handler retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

/// The events of `batch` as `(namespace, event)`, the first occurrence of each key only.
/// The raw store and the rollup both use it, so they resolve duplicates the same way.
pub(crate) fn batch_events(batch: &Batch<IndexRecord>) -> Vec<(&str, &IngestedEvent)> {
    first_of_each(batch.iter().flat_map(|item| {
        let record = &item.payload;
        record
            .events
            .iter()
            .map(move |e| (record.namespace.as_str(), e))
    }))
}
