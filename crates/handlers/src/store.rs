//! [`PipelineStore`]: what the server needs from a backend beyond the outbox, implemented
//! for [`PgStore`](conveyor::PgStore) in `postgres` and for
//! [`SqliteStore`](conveyor::SqliteStore) in `sqlite`.
//!
//! The server is generic over it, so one binary serves either backend with the same routes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use conveyor::{PoolBuilder, Store};

use crate::{
    AcceptReport, Backend, DailyCount, DailyCountQuery, Embedder, EventTypeCount, EventsReceived,
    PartitionManager, PartitionReport, Pipeline, RawEvent, RawEventQuery, RebuildReport, Result,
    SearchHit, SearchQuery, Summary,
};

/// A backend the whole pipeline runs on: its storage handlers, its read side, its upkeep.
///
/// Every query takes the tenant (`namespace`) explicitly: the pipeline's tables hold every
/// tenant, while the store's own namespace scopes only its queues.
#[async_trait]
pub trait PipelineStore: Store {
    /// How many transactions of [`accept`](Self::accept) a server should run at once: 1 where
    /// writers take turns anyway (SQLite), more where one can run while another commits.
    const ACCEPT_WRITERS: usize = 1;

    /// How long [`keyword_search`](Self::keyword_search) and
    /// [`similar_search`](Self::similar_search) let their statement run: 5 s.
    const SEARCH_TIMEOUT: Duration = crate::search::SEARCH_TIMEOUT;

    /// Apply the outbox migrations and the pipeline's own.
    async fn migrate(&self) -> Result<()>;

    /// Accept requests of the ingestion API, raw-first, in one transaction (one commit for
    /// several requests): their events go to `events_raw` (when `backends` has
    /// [`Backend::Raw`]; the primary key skips those already stored), and one
    /// [`IndexRecord`](crate::IndexRecord) per other configured backend (per request and
    /// 1,000 events) carries the newly stored events to their handlers. When it returns `Ok`
    /// (one report per batch, in order) the events are durable and every backend will see
    /// them once; on `Err` nothing was written.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Publish`] when the transaction fails.
    async fn accept(
        &self,
        backends: &[Backend],
        batches: &[EventsReceived],
    ) -> Result<Vec<AcceptReport>>;

    /// Register the handler of every backend `pipeline` configures (not the fan-out).
    fn register_backends(builder: PoolBuilder<Self>, pipeline: &Pipeline) -> PoolBuilder<Self>;

    /// One upkeep pass for `today` (UTC): day partitions on Postgres, retention everywhere.
    async fn maintain(
        &self,
        partitions: &PartitionManager,
        today: NaiveDate,
    ) -> Result<PartitionReport>;

    /// Raw events stored outside every day partition (always 0 without partitions).
    async fn default_rows(&self) -> Result<i64>;

    /// Check the database answers.
    async fn ping(&self) -> Result<()>;

    /// The same database with its outbox scoped to `namespace` (the backend's
    /// `with_namespace`), for operator reads and controls of another namespace.
    ///
    /// # Errors
    /// [`conveyor::Error::Config`] when the namespace is empty or has control characters.
    fn scoped(&self, namespace: &str) -> conveyor::Result<Self>;

    /// The connection pool's (open connections, idle connections), for metrics.
    fn connections(&self) -> (u32, usize);

    /// See [`crate::daily_counts`].
    async fn daily_counts(&self, q: &DailyCountQuery) -> Result<Vec<DailyCount>>;

    /// See [`crate::summary`].
    async fn summary(&self, namespace: &str, from: NaiveDate, to: NaiveDate) -> Result<Summary>;

    /// See [`crate::event_types`].
    async fn event_types(
        &self,
        namespace: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<EventTypeCount>>;

    /// See [`crate::raw_events`].
    async fn raw_events(&self, q: &RawEventQuery) -> Result<Vec<RawEvent>>;

    /// See [`crate::keyword_search`]: [`keyword_search_within`](Self::keyword_search_within)
    /// [`SEARCH_TIMEOUT`](Self::SEARCH_TIMEOUT).
    async fn keyword_search(
        &self,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        self.keyword_search_within(
            SearchQuery::new(namespace, query, limit).within(Self::SEARCH_TIMEOUT),
        )
        .await
    }

    /// See [`crate::keyword_search`]; the database cancels the search's statement once it has
    /// run for `q.timeout` (on SQLite: once the deadline has passed, checked every thousand
    /// virtual-machine steps).
    ///
    /// # Errors
    /// As [`crate::keyword_search`]; [`crate::Error::SearchTimeout`] when cancelled.
    async fn keyword_search_within(&self, q: SearchQuery<'_>) -> Result<Vec<SearchHit>>;

    /// See [`crate::similar_search`]: [`similar_search_within`](Self::similar_search_within)
    /// [`SEARCH_TIMEOUT`](Self::SEARCH_TIMEOUT).
    async fn similar_search(
        &self,
        embedder: &Arc<dyn Embedder>,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        self.similar_search_within(
            embedder,
            SearchQuery::new(namespace, query, limit).within(Self::SEARCH_TIMEOUT),
        )
        .await
    }

    /// See [`crate::similar_search`]; the database cancels the scan once it has run for
    /// `q.timeout` (embedding the query is not counted).
    ///
    /// # Errors
    /// As [`crate::similar_search`]; [`crate::Error::SearchTimeout`] when cancelled.
    async fn similar_search_within(
        &self,
        embedder: &Arc<dyn Embedder>,
        q: SearchQuery<'_>,
    ) -> Result<Vec<SearchHit>>;

    /// See [`crate::rebuild_rollups`].
    async fn rebuild_rollups(&self, from: NaiveDate, to: NaiveDate) -> Result<RebuildReport>;
}
