//! [`KeywordIndexHandler`] on Postgres, and [`keyword_search`], its read side (`tsvector`
//! + GIN).

use std::time::Duration;

use chrono::{DateTime, Utc};
use conveyor::{Context, PgStore};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::Postgres;
use uuid::Uuid;

use super::deadline::{begin_with_timeout, timed_out};
use crate::error::Result;
use crate::keyword_index::KeywordIndexHandler;
use crate::search::{IndexRows, SearchHit, SearchQuery};
use crate::storage_handler::{Records, WriteBatch, Written};

const INSERT_DOCUMENTS: &str = include_str!("sql/keyword_insert_documents.sql");
const SEARCH: &str = include_str!("sql/keyword_search.sql");

impl WriteBatch<PgStore> for KeywordIndexHandler {
    async fn write(&self, batch: &Records, ctx: &mut Context<'_, PgStore>) -> Written {
        let rows = IndexRows::from_batch(batch);
        sqlx::query(INSERT_DOCUMENTS)
            .bind(&rows.namespaces)
            .bind(&rows.event_ids)
            .bind(&rows.timestamps)
            .bind(&rows.event_types)
            .bind(&rows.sources)
            .bind(&rows.texts)
            .execute(ctx.db().await?)
            .await?;
        Ok(())
    }
}

/// Full-text search over one namespace's events, best first.
///
/// `query` uses web-search syntax (`websearch_to_tsquery`): words must all match, `"quoted
/// phrases"` match in order, `or` between alternatives and `-word` excludes. Words match as
/// written, case-insensitively, without stemming (the `simple` configuration), so ids and
/// codes such as `order-123` are found. Hits are ordered by `ts_rank` (the
/// [`score`](SearchHit::score)), then newest first. A query of only punctuation finds nothing.
///
/// The statement runs for at most 5 s: past that Postgres cancels it (use
/// [`PipelineStore::keyword_search_within`](crate::PipelineStore::keyword_search_within) on a
/// [`PgStore`](conveyor::PgStore) to choose another deadline).
///
/// # Errors
/// [`crate::Error::InvalidQuery`] when `query` is empty or blank (`q must not be empty`) or `limit`
/// is outside 1..=100; [`crate::Error::SearchTimeout`] when the deadline passed;
/// [`crate::Error::Database`] when the search fails.
///
/// # Example
/// ```no_run
/// # async fn run(pool: sqlx::PgPool) -> conveyor_handlers::Result<()> {
/// let hits = conveyor_handlers::keyword_search(&pool, "acme", "\"card declined\" -test", 20).await?;
/// # Ok(()) }
/// ```
pub async fn keyword_search(
    pool: &sqlx::PgPool,
    namespace: &str,
    query: &str,
    limit: u32,
) -> Result<Vec<SearchHit>> {
    keyword_search_within(pool, SearchQuery::new(namespace, query, limit)).await
}

/// [`keyword_search`] of `q`, whose statement Postgres cancels after `q.timeout`
/// ([`crate::Error::SearchTimeout`]).
pub(crate) async fn keyword_search_within(
    pool: &sqlx::PgPool,
    q: SearchQuery<'_>,
) -> Result<Vec<SearchHit>> {
    q.check()?;
    // Postgres text refuses NUL; to `websearch_to_tsquery` it is a separator like any other
    // non-word character, so it is one here too (as in the SQLite translation)
    let search = sqlx::query_as(SEARCH)
        .bind(q.namespace)
        .bind(q.query.replace('\0', " "))
        .bind(i64::from(q.limit));
    hits_within(pool, search, q.timeout).await
}

/// The hits of `search` (either search's statement), run in a transaction whose statements
/// Postgres cancels after `timeout` ([`crate::Error::SearchTimeout`]).
pub(crate) async fn hits_within(
    pool: &sqlx::PgPool,
    search: QueryAs<'_, Postgres, HitRow, PgArguments>,
    timeout: Duration,
) -> Result<Vec<SearchHit>> {
    let mut tx = begin_with_timeout(pool, timeout).await?;
    let rows = search
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| timed_out(e, timeout))?;
    tx.commit().await?;
    Ok(rows.into_iter().map(HitRow::into_hit).collect())
}

/// A row of either search, as selected by `keyword_search.sql` and `vector_similar.sql`.
#[derive(sqlx::FromRow)]
pub(crate) struct HitRow {
    event_id: Uuid,
    ts: DateTime<Utc>,
    event_type: String,
    source: String,
    score: f64,
}

impl HitRow {
    pub(crate) fn into_hit(self) -> SearchHit {
        SearchHit {
            event_id: self.event_id,
            timestamp: self.ts,
            event_type: self.event_type,
            source: self.source,
            score: self.score,
        }
    }
}
