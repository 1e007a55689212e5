//! The pipeline the `conveyor` server ships, built on the framework's public API. Ingestion
//! is raw-first: [`PipelineStore::accept`] stores a request's events in `events_raw` and, in
//! the same transaction, publishes the index records of the newly stored ones:
//!
//! ```text
//! POST /v1/events/bulk ─► accept: events_raw + IndexRecord[rollup|keyword|vector] (one tx)
//!    RollupHandler           IndexRecord[rollup]  → analytics_daily_event_counts, analytics_daily_actors
//!    KeywordIndexHandler     IndexRecord[keyword] → search_documents (tsvector + GIN)
//!    VectorIndexHandler      IndexRecord[vector]  → search_embeddings (via an Embedder)
//! spool (database outage) ─► outbox: EventsReceived
//!    FanOutToIndexBackends   EventsReceived → one IndexRecord per configured backend
//!    RawStoreHandler         IndexRecord[raw]     → events_raw (day partitions)
//! ```
//!
//! Every backend deduplicates on `(namespace, event_id, timestamp)` inside the transaction
//! that completes its batch, so duplicates, retries and crashes never store or count an
//! event twice.
//!
//! # Layout
//! The backend-neutral core, which names no backend:
//! - `events` — the payloads ([`EventsReceived`], [`IndexRecord`], [`IngestedEvent`]) and [`Backend`].
//! - `fan_out` — [`FanOutToIndexBackends`]; `embedder` — [`Embedder`], [`HashingEmbedder`].
//! - `raw_store`, `rollup`, `keyword_index`, `vector_index` — the handler types
//!   ([`RawStoreHandler`], [`RollupHandler`], [`KeywordIndexHandler`], [`VectorIndexHandler`])
//!   and what their backends share (batch deduplication, [`RebuildReport`], embedding).
//! - `ingestion` — [`AcceptReport`] and the records `accept` publishes; `partitions` —
//!   [`PartitionManager`]; `queries` — the read side's types and bounds; `search` —
//!   [`SearchHit`] and the searches' parameters.
//! - `storage_handler` — the one `impl EventHandler` of each of those handlers; each
//!   backend implements only its `WriteBatch`.
//! - `store` — [`PipelineStore`]; `policy` — [`RetryPolicy`]; `error` — [`Error`].
//!
//! Beside it, one directory per backend implements [`PipelineStore`] and the handlers:
//! `postgres` for [`PgStore`](conveyor::PgStore) (its SQL in `postgres/sql`) and `sqlite` for
//! [`SqliteStore`](conveyor::SqliteStore). Only this file names them.

use std::sync::Arc;

use conveyor::{EventHandler, HandlerOptions, PoolBuilder, Store};

mod embedder;
mod error;
mod events;
mod fan_out;
mod ingestion;
mod keyword_index;
mod partitions;
mod policy;
mod postgres;
mod queries;
mod raw_store;
mod rollup;
mod search;
mod sqlite;
mod storage_handler;
mod store;
mod vector_index;

pub use embedder::{EmbedError, Embedder, HashingEmbedder};
pub use error::{Error, Result};
pub use events::{Backend, EventsReceived, IndexRecord, IngestedEvent};
pub use fan_out::FanOutToIndexBackends;
pub use ingestion::{AcceptReport, RECORD_EVENTS};
pub use keyword_index::KeywordIndexHandler;
pub use partitions::{PartitionManager, PartitionReport};
pub use policy::RetryPolicy;
pub use postgres::keyword_index::keyword_search;
pub use postgres::migrate;
pub use postgres::queries::{daily_counts, event_types, raw_events, summary};
pub use postgres::rollup::rebuild_rollups;
pub use postgres::vector_index::similar_search;
pub use queries::{
    DailyCount, DailyCountQuery, DailyCursor, EventTypeCount, RawCursor, RawEvent, RawEventQuery,
    Summary,
};
pub use raw_store::RawStoreHandler;
pub use rollup::{RebuildReport, RollupHandler};
pub use search::{SearchHit, SearchQuery};
pub use store::PipelineStore;
pub use vector_index::VectorIndexHandler;

/// Which backends run and how they behave: the pipeline's configuration.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The backends the fan-out emits to and whose handlers run. Defaults to all four.
    pub backends: Vec<Backend>,
    /// The embedder of the vector backend. Defaults to [`HashingEmbedder::default`].
    pub embedder: Arc<dyn Embedder>,
    /// How the index backends retry. Defaults to [`RetryPolicy::default`].
    pub retry: RetryPolicy,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self {
            backends: Backend::ALL.to_vec(),
            embedder: Arc::new(HashingEmbedder::default()),
            retry: RetryPolicy::default(),
        }
    }
}

impl Pipeline {
    /// Whether `backend` is configured.
    pub fn has(&self, backend: Backend) -> bool {
        self.backends.contains(&backend)
    }
}

/// Register the fan-out and the handler of every configured backend on `builder`, on any
/// [`PipelineStore`].
///
/// The fan-out and the raw store consume only what [`PipelineStore::accept`] does not write
/// itself: `EventsReceived` published by the spool after an outage (or by older versions),
/// so each runs one worker.
///
/// Conflicts (a handler of yours already on one of these queues) surface from
/// [`PoolBuilder::build`], never as a panic.
pub fn register_all<S: PipelineStore>(
    builder: PoolBuilder<S>,
    pipeline: &Pipeline,
) -> PoolBuilder<S> {
    let builder = builder.register_with(
        FanOutToIndexBackends::new(pipeline.backends.iter().copied()),
        HandlerOptions::default().concurrency(1),
    );
    S::register_backends(builder, pipeline)
}

/// The storage handlers of every configured backend, on any store they are implemented for
/// (`postgres`, `sqlite`), with the same concurrency everywhere. The index
/// handlers poll every `poll` when idle, if given (on SQLite, whose API records wake
/// nobody: see `sqlite::ingestion::UNANNOUNCED`).
fn register_backends<S>(
    builder: PoolBuilder<S>,
    pipeline: &Pipeline,
    poll: Option<std::time::Duration>,
) -> PoolBuilder<S>
where
    S: Store,
    RawStoreHandler: EventHandler<S>,
    RollupHandler: EventHandler<S>,
    KeywordIndexHandler: EventHandler<S>,
    VectorIndexHandler: EventHandler<S>,
{
    let options = |concurrency: usize| {
        let options = HandlerOptions::default().concurrency(concurrency);
        match poll {
            Some(interval) => options.poll_interval(interval),
            None => options,
        }
    };
    let mut builder = builder;
    for backend in &pipeline.backends {
        builder = match backend {
            Backend::Raw => builder.register(RawStoreHandler::new(pipeline.retry)),
            Backend::Rollup => {
                builder.register_with(RollupHandler::new(pipeline.retry), options(2))
            }
            Backend::Keyword => {
                builder.register_with(KeywordIndexHandler::new(pipeline.retry), options(2))
            }
            Backend::Vector => builder.register_with(
                VectorIndexHandler::new(pipeline.embedder.clone(), pipeline.retry),
                options(1),
            ),
        };
    }
    builder
}
