//! The pipeline on [`PgStore`]: the four storage handlers, the read side and the day
//! partitions of `migrations/pipeline`, behind [`PipelineStore`].
//!
//! # Layout
//! - `ingestion`: `accept`, the API's raw-first write.
//! - `raw_store`, `rollup`, `keyword_index`, `vector_index`: `impl EventHandler<PgStore>`
//!   for each handler, beside its read side (`rebuild_rollups`, the two searches).
//! - `deadline`: the searches' `statement_timeout`.
//! - `queries`: daily counts, summary, event types, raw events.
//! - `partitions`: `PartitionManager::maintain`, the day partitions.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use conveyor::{PgStore, PoolBuilder};

use crate::{
    AcceptReport, Backend, DailyCount, DailyCountQuery, Embedder, EventTypeCount, EventsReceived,
    PartitionManager, PartitionReport, Pipeline, PipelineStore, RawEvent, RawEventQuery,
    RebuildReport, Result, SearchHit, SearchQuery, Summary,
};

mod deadline;
mod ingestion;
pub(crate) mod keyword_index;
mod partitions;
pub(crate) mod queries;
mod raw_store;
pub(crate) mod rollup;
pub(crate) mod vector_index;

// Each method forwards to this backend's module for it, as `sqlite`'s impl does to its own:
// the two impls share the trait's signatures, not their code.
#[async_trait]
impl PipelineStore for PgStore {
    const ACCEPT_WRITERS: usize = 2;

    async fn migrate(&self) -> Result<()> {
        migrate(self.pool()).await
    }

    async fn accept(
        &self,
        backends: &[Backend],
        batches: &[EventsReceived],
    ) -> Result<Vec<AcceptReport>> {
        ingestion::accept(self, backends, batches).await
    }

    fn register_backends(builder: PoolBuilder<Self>, pipeline: &Pipeline) -> PoolBuilder<Self> {
        crate::register_backends(builder, pipeline, None)
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

    fn scoped(&self, namespace: &str) -> conveyor::Result<Self> {
        self.with_namespace(namespace)
    }

    fn connections(&self) -> (u32, usize) {
        (self.pool().size(), self.pool().num_idle())
    }

    async fn daily_counts(&self, q: &DailyCountQuery) -> Result<Vec<DailyCount>> {
        queries::daily_counts(self.pool(), q).await
    }

    async fn summary(&self, namespace: &str, from: NaiveDate, to: NaiveDate) -> Result<Summary> {
        queries::summary(self.pool(), namespace, from, to).await
    }

    async fn event_types(
        &self,
        namespace: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<EventTypeCount>> {
        queries::event_types(self.pool(), namespace, from, to).await
    }

    async fn raw_events(&self, q: &RawEventQuery) -> Result<Vec<RawEvent>> {
        queries::raw_events(self.pool(), q).await
    }

    async fn keyword_search_within(&self, q: SearchQuery<'_>) -> Result<Vec<SearchHit>> {
        keyword_index::keyword_search_within(self.pool(), q).await
    }

    async fn similar_search_within(
        &self,
        embedder: &Arc<dyn Embedder>,
        q: SearchQuery<'_>,
    ) -> Result<Vec<SearchHit>> {
        vector_index::similar_search_within(self.pool(), embedder.as_ref(), q).await
    }

    async fn rebuild_rollups(&self, from: NaiveDate, to: NaiveDate) -> Result<RebuildReport> {
        rollup::rebuild_rollups(self.pool(), from, to).await
    }
}

/// The pipeline's Postgres migrations, embedded.
static PIPELINE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/pipeline");

/// Apply the framework's outbox migrations and the pipeline's own (`migrations/pipeline`).
///
/// Both sets share sqlx's migration table with distinct versions, so each migrator is told
/// to ignore the other's applied versions.
///
/// # Errors
/// [`crate::Error::Migrate`] when a migration fails or was changed after it
/// was applied.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<()> {
    // both sets in Conveyor's own history table, apart from any application's
    conveyor::migrations::run_postgres(pool, &conveyor::MIGRATOR).await?;
    conveyor::migrations::run_postgres(pool, &PIPELINE_MIGRATOR).await?;
    Ok(())
}
