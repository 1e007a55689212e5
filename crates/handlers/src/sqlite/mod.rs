//! The pipeline on [`SqliteStore`]: the four storage handlers, the read side and the upkeep
//! of `migrations/pipeline-sqlite`, behind [`PipelineStore`], with the behaviour of the
//! Postgres pipeline (same results, same errors for bad parameters).
//!
//! What differs is SQLite's, and stays inside this module:
//! - **One writer.** Every handler writes through its batch's transaction, which holds the
//!   database's write lock from the first `ctx.db()` to the commit, so slow work (embedding)
//!   happens before it. The rollup is exact because batches cannot interleave at all.
//! - **Types.** Instants are integer microseconds since the epoch (Postgres' precision), days
//!   `YYYY-MM-DD` text, event ids 16-byte blobs (which sort like uuids), attributes JSON
//!   text. Batches bind as one JSON array read with `json_each`, where Postgres unnests arrays.
//! - **No partitions.** Retention deletes rows older than the window instead of dropping day
//!   partitions, so `maintain` creates and drops nothing and `default_rows` is always 0.
//! - **Search.** Keyword search runs on FTS5 (see `websearch` and `keyword_index`) and
//!   similarity search scans the namespace's vectors in Rust (see `vector_index`).
//!
//! # Layout
//! - `ingestion`: `accept`, the API's raw-first write.
//! - `raw_store`, `rollup`, `keyword_index`, `vector_index`: `impl EventHandler<SqliteStore>`
//!   for each handler, beside its read side (`rebuild_rollups`, the two searches).
//! - `websearch`: web-search syntax → a safe FTS5 expression.
//! - `deadline`: the searches' deadline, a progress handler that interrupts the statement.
//! - `queries`: daily counts, summary, event types, raw events.
//! - `retention`: `maintain`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use conveyor::{PoolBuilder, SqliteStore};

use crate::{
    AcceptReport, Backend, DailyCount, DailyCountQuery, Embedder, EventTypeCount, EventsReceived,
    PartitionManager, PartitionReport, Pipeline, PipelineStore, RawEvent, RawEventQuery,
    RebuildReport, Result, SearchHit, SearchQuery, Summary,
};

mod deadline;
mod ingestion;
mod keyword_index;
mod queries;
mod raw_store;
mod retention;
mod rollup;
mod vector_index;
mod websearch;

/// The pipeline's SQLite migrations, embedded.
static PIPELINE_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/pipeline-sqlite");

#[async_trait]
impl PipelineStore for SqliteStore {
    /// Apply the pipeline's migrations (`migrations/pipeline-sqlite`); the outbox's
    /// (`migrations/sqlite`) were applied when the store was opened (every `SqliteStore`
    /// constructor does). Both are recorded in Conveyor's own history table
    /// (`conveyor_migrations`).
    async fn migrate(&self) -> Result<()> {
        // the outbox's set was applied when the store was opened
        conveyor::migrations::run_sqlite(self.pool(), &PIPELINE_MIGRATOR).await?;
        Ok(())
    }

    async fn accept(
        &self,
        backends: &[Backend],
        batches: &[EventsReceived],
    ) -> Result<Vec<AcceptReport>> {
        ingestion::accept(self, backends, batches).await
    }

    fn register_backends(builder: PoolBuilder<Self>, pipeline: &Pipeline) -> PoolBuilder<Self> {
        // the API's records wake nobody (see `ingestion::UNANNOUNCED`): the handlers poll
        crate::register_backends(builder, pipeline, Some(ingestion::POLL_INTERVAL))
    }

    async fn maintain(
        &self,
        partitions: &PartitionManager,
        today: NaiveDate,
    ) -> Result<PartitionReport> {
        retention::maintain(self, partitions, today).await
    }

    async fn default_rows(&self) -> Result<i64> {
        Ok(0)
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
        keyword_index::keyword_search(self.pool(), q).await
    }

    async fn similar_search_within(
        &self,
        embedder: &Arc<dyn Embedder>,
        q: SearchQuery<'_>,
    ) -> Result<Vec<SearchHit>> {
        vector_index::similar_search(self.pool(), embedder.as_ref(), q).await
    }

    async fn rebuild_rollups(&self, from: NaiveDate, to: NaiveDate) -> Result<RebuildReport> {
        rollup::rebuild_rollups(self, from, to).await
    }
}

/// An instant as stored: microseconds since the epoch, the precision Postgres keeps
/// (finer digits are cut, as sqlx does binding a `timestamptz`).
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// An instant from its stored microseconds.
fn instant(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A framework error of opening or committing a write transaction, as this crate's error.
fn store_error(e: conveyor::Error) -> crate::Error {
    match e {
        conveyor::Error::Database(e) => crate::Error::Database(e),
        other => crate::Error::Database(sqlx::Error::Protocol(other.to_string())),
    }
}
