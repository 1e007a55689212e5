//! [`KeywordIndexHandler`]: IndexRecord[keyword] → `search_documents`; and
//! [`keyword_search`], its read side.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use conveyor::{Batch, Context, EventHandler, HandlerError};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::{first_of_each, IndexRecord};
use crate::policy::RetryPolicy;
use crate::search::{begin_with_timeout, timed_out, SearchHit, SEARCH_TIMEOUT};

const INSERT_DOCUMENTS: &str = include_str!("sql/keyword_insert_documents.sql");
const SEARCH: &str = include_str!("sql/keyword_search.sql");

/// The most bytes of an event's text that are indexed. Postgres refuses a tsvector over
/// 1 MiB, which would make an oversized event fail its record on every retry; 64 KiB of
/// attribute text is far more than search needs.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The most hits one search returns.
pub(crate) const MAX_LIMIT: u32 = 100;

/// Indexes the events of `keyword` [`IndexRecord`]s for full-text search.
///
/// - **Consumes** [`IndexRecord`]s published with routing key `"keyword"` (by
///   [`PipelineStore::accept`](crate::PipelineStore::accept) or
///   [`FanOutToIndexBackends`](crate::FanOutToIndexBackends)), up to 20 records per batch.
/// - **Writes** one `search_documents` row per event: its type, source and
///   [`search_text`](crate::IngestedEvent::search_text) (capped at 64 KiB), whose `tsvector`
///   Postgres derives and a GIN index serves to [`keyword_search`]. It emits no events.
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
    policy: RetryPolicy,
}

impl KeywordIndexHandler {
    /// A handler retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

#[async_trait]
impl EventHandler for KeywordIndexHandler {
    type Event = IndexRecord;
    const ROUTING_KEY: Option<&'static str> = Some("keyword");
    const BATCH_SIZE: usize = 20;

    async fn handle(
        &self,
        batch: Batch<IndexRecord>,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let rows = IndexRows::from_batch(&batch);
        if rows.is_empty() {
            return Ok(());
        }
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

    fn backoff(&self, attempt: u32) -> std::time::Duration {
        self.policy.backoff(attempt)
    }

    fn max_retries(&self) -> u32 {
        self.policy.max_retries
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
/// [`Error::InvalidQuery`] when `query` is empty or blank (`q must not be empty`) or `limit`
/// is outside 1..=100; [`Error::SearchTimeout`] when the deadline passed;
/// [`Error::Database`] when the search fails.
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
    keyword_search_within(pool, namespace, query, limit, SEARCH_TIMEOUT).await
}

/// [`keyword_search`] whose statement Postgres cancels after `timeout`
/// ([`Error::SearchTimeout`]).
pub(crate) async fn keyword_search_within(
    pool: &sqlx::PgPool,
    namespace: &str,
    query: &str,
    limit: u32,
    timeout: Duration,
) -> Result<Vec<SearchHit>> {
    validate(query, limit)?;
    let mut tx = begin_with_timeout(pool, timeout).await?;
    let rows: Vec<HitRow> = sqlx::query_as(SEARCH)
        .bind(namespace)
        .bind(query)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| timed_out(e, timeout))?;
    tx.commit().await?;
    Ok(rows.into_iter().map(HitRow::into_hit).collect())
}

/// Check the parameters both searches share: a non-blank `q` and a `limit` in 1..=100.
pub(crate) fn validate(query: &str, limit: u32) -> Result<()> {
    if query.trim().is_empty() {
        return Err(Error::InvalidQuery("q must not be empty".into()));
    }
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidQuery(format!(
            "limit must be 1..={MAX_LIMIT}, got {limit}"
        )));
    }
    Ok(())
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

/// The deduplicated events of a batch as columns, ready to bind to an `unnest` insert.
/// Both search backends index the same rows and the same text.
#[derive(Debug, Default)]
pub(crate) struct IndexRows {
    pub(crate) namespaces: Vec<String>,
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) timestamps: Vec<DateTime<Utc>>,
    pub(crate) event_types: Vec<String>,
    pub(crate) sources: Vec<String>,
    /// [`search_text`](crate::IngestedEvent::search_text), made storable (see [`storable`]).
    pub(crate) texts: Vec<String>,
}

impl IndexRows {
    /// The batch's events, first occurrence of each `(namespace, event_id, timestamp)` only.
    pub(crate) fn from_batch(batch: &Batch<IndexRecord>) -> Self {
        let events = first_of_each(batch.iter().flat_map(|item| {
            let ns = item.payload.namespace.as_str();
            item.payload.events.iter().map(move |e| (ns, e))
        }));
        let mut rows = Self::default();
        for (ns, e) in events {
            rows.namespaces.push(storable(ns.to_owned(), usize::MAX));
            rows.event_ids.push(e.event_id);
            rows.timestamps.push(e.timestamp);
            rows.event_types
                .push(storable(e.event_type.clone(), usize::MAX));
            rows.sources.push(storable(e.source.clone(), usize::MAX));
            rows.texts.push(storable(e.search_text(), MAX_BODY_BYTES));
        }
        rows
    }

    pub(crate) fn len(&self) -> usize {
        self.event_ids.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.event_ids.is_empty()
    }
}

/// `s` as Postgres `text` accepts it: NUL characters (valid in JSON, refused by Postgres,
/// which would fail the batch on every retry) become spaces, and at most `max_bytes` are
/// kept, cut at a character boundary.
pub(crate) fn storable(mut s: String, max_bytes: usize) -> String {
    if s.len() > max_bytes {
        let mut cut = max_bytes;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    if s.contains('\0') {
        s = s.replace('\0', " ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_queries_and_bad_limits_are_rejected_by_name() {
        for q in ["", "  ", "\t\n"] {
            let err = validate(q, 10).unwrap_err().to_string();
            assert!(err.contains("q must not be empty"), "{err}");
        }
        for limit in [0, 101, u32::MAX] {
            let err = validate("x", limit).unwrap_err().to_string();
            assert!(err.contains("limit must be 1..=100"), "{err}");
        }
        assert!(validate("x", 1).is_ok() && validate("x", 100).is_ok());
    }

    #[test]
    fn storable_strips_nul_and_cuts_at_a_char_boundary() {
        assert_eq!(storable("a\0b".into(), 10), "a b");
        assert_eq!(storable("héllo".into(), 2), "h");
        assert_eq!(storable("héllo".into(), 3), "hé");
        assert_eq!(storable("abc".into(), usize::MAX), "abc");
    }
}
