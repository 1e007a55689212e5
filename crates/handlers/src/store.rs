//! [`PipelineStore`]: what the server needs from a backend beyond the outbox, implemented
//! for [`PgStore`] here and for [`SqliteStore`](conveyor::SqliteStore) in `sqlite`.
//!
//! The server is generic over it, so one binary serves either backend with the same routes.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use conveyor::{PgStore, PoolBuilder, Store};

use crate::{
    DailyCount, DailyCountQuery, Embedder, EventTypeCount, PartitionManager, PartitionReport,
    Pipeline, RawEvent, RawEventQuery, RebuildReport, Result, SearchHit, Summary,
};

/// A backend the whole pipeline runs on: its storage handlers, its read side, its upkeep.
///
/// Every query takes the tenant (`namespace`) explicitly: the pipeline's tables hold every
/// tenant, while the store's own namespace scopes only its queues.
#[async_trait]
pub trait PipelineStore: Store {
    /// Apply the outbox migrations and the pipeline's own.
    async fn migrate(&self) -> Result<()>;

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

    /// See [`crate::keyword_search`].
    async fn keyword_search(
        &self,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>>;

    /// See [`crate::similar_search`].
    async fn similar_search(
        &self,
        embedder: &Arc<dyn Embedder>,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>>;

    /// See [`crate::rebuild_rollups`].
    async fn rebuild_rollups(&self, from: NaiveDate, to: NaiveDate) -> Result<RebuildReport>;
}

#[async_trait]
impl PipelineStore for PgStore {
    async fn migrate(&self) -> Result<()> {
        crate::migrate(self.pool()).await
    }

    fn register_backends(builder: PoolBuilder<Self>, pipeline: &Pipeline) -> PoolBuilder<Self> {
        crate::register_backends(builder, pipeline)
    }

    async fn maintain(
        &self,
        partitions: &PartitionManager,
        today: NaiveDate,
    ) -> Result<PartitionReport> {
        partitions.maintain(self.pool(), today).await
    }

    async fn default_rows(&self) -> Result<i64> {
        PartitionManager::default_rows(self.pool()).await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn daily_counts(&self, q: &DailyCountQuery) -> Result<Vec<DailyCount>> {
        crate::daily_counts(self.pool(), q).await
    }

    async fn summary(&self, namespace: &str, from: NaiveDate, to: NaiveDate) -> Result<Summary> {
        crate::summary(self.pool(), namespace, from, to).await
    }

    async fn event_types(
        &self,
        namespace: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<EventTypeCount>> {
        crate::event_types(self.pool(), namespace, from, to).await
    }

    async fn raw_events(&self, q: &RawEventQuery) -> Result<Vec<RawEvent>> {
        crate::raw_events(self.pool(), q).await
    }

    async fn keyword_search(
        &self,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        crate::keyword_search(self.pool(), namespace, query, limit).await
    }

    async fn similar_search(
        &self,
        embedder: &Arc<dyn Embedder>,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        crate::similar_search(self.pool(), embedder.as_ref(), namespace, query, limit).await
    }

    async fn rebuild_rollups(&self, from: NaiveDate, to: NaiveDate) -> Result<RebuildReport> {
        crate::rebuild_rollups(self.pool(), from, to).await
    }
}
