//! [`KeywordIndexHandler`] on SQLite: `IndexRecord[keyword]` → `search_documents` and its FTS5
//! index; and `keyword_search`, its read side.

use conveyor::{Context, HandlerError, SqliteStore};
use serde::Serialize;
use uuid::Uuid;

use super::deadline::Deadline;
use super::websearch::WebSearch;
use super::{instant, micros};
use crate::search::{IndexRows, SearchQuery};
use crate::storage_handler::{Records, WriteBatch, Written};
use crate::{KeywordIndexHandler, Result, SearchHit};

const INSERT_DOCUMENTS: &str = include_str!("sql/keyword_insert_documents.sql");
const SEARCH: &str = include_str!("sql/keyword_search.sql");

/// One document as [`INSERT_DOCUMENTS`] reads it from the JSON array.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(flatten)]
    row: IndexedRow<'a>,
    body: &'a str,
}

/// The Postgres handler's semantics on SQLite: one `search_documents` row per event (type,
/// source and the same capped search text), inserted in the transaction that completes the
/// batch and skipped when its key `(namespace, event_id, ts)` is already indexed; a trigger
/// adds it to the FTS5 index `search_fts` in the same statement. Queue, batch size and
/// retries are the handler's on every backend.
impl WriteBatch<SqliteStore> for KeywordIndexHandler {
    async fn write(&self, batch: &Records, ctx: &mut Context<'_, SqliteStore>) -> Written {
        let rows = IndexRows::from_batch(batch);
        let documents: Vec<Document<'_>> = (0..rows.len())
            .map(|i| Document {
                row: IndexedRow::new(&rows, i),
                body: &rows.texts[i],
            })
            .collect();
        let documents = serde_json::to_string(&documents).map_err(HandlerError::fail)?;
        sqlx::query(INSERT_DOCUMENTS)
            .bind(documents)
            .execute(ctx.db().await?)
            .await?;
        Ok(())
    }
}

/// What both search tables store of row `i` of [`IndexRows`] besides its document or
/// embedding, as their inserts read it.
#[derive(Serialize)]
pub(super) struct IndexedRow<'a> {
    namespace: &'a str,
    event_id: Uuid,
    ts: i64,
    event_type: &'a str,
    source: &'a str,
}

impl<'a> IndexedRow<'a> {
    /// Row `i` of `rows`.
    pub(super) fn new(rows: &'a IndexRows, i: usize) -> Self {
        Self {
            namespace: &rows.namespaces[i],
            event_id: rows.event_ids[i],
            ts: micros(rows.timestamps[i]),
            event_type: &rows.event_types[i],
            source: &rows.sources[i],
        }
    }
}

/// [`keyword_search`](crate::keyword_search) on SQLite: the same parameters, errors and
/// syntax, read by [`WebSearch`] into an FTS5 expression.
///
/// Differences from Postgres, all FTS5's: the score is BM25 (higher is better, but on
/// another scale than `ts_rank`: a word most documents hold scores near 0); and words are
/// the runs of letters and digits, so where Postgres keeps `/pricing` or `a.b.c` as one
/// token, they are found here by their parts too (`pricing`, `b`).
///
/// The statement is interrupted once it has run for `q.timeout` (see [`Deadline`]).
///
/// # Errors
/// [`crate::Error::InvalidQuery`] when `query` is blank or `limit` is outside 1..=100;
/// [`crate::Error::SearchTimeout`] when the deadline passed;
/// [`crate::Error::Database`] when the search fails.
pub(super) async fn keyword_search(
    pool: &sqlx::SqlitePool,
    q: SearchQuery<'_>,
) -> Result<Vec<SearchHit>> {
    q.check()?;
    let Some(expression) = WebSearch::parse(q.query).to_fts5(&hex(q.namespace)) else {
        // nothing but punctuation: a valid query that matches nothing, as on Postgres
        return Ok(Vec::new());
    };
    let mut deadline = Deadline::start(pool, q.timeout).await?;
    let rows: Result<Vec<HitRow>, _> = sqlx::query_as(SEARCH)
        .bind(q.namespace)
        .bind(expression)
        .bind(i64::from(q.limit))
        .fetch_all(deadline.conn())
        .await;
    let rows = rows.map_err(|e| deadline.error(e));
    deadline.finish().await?;
    Ok(rows?.into_iter().map(HitRow::into_hit).collect())
}

/// The upper-case hex of `namespace`'s UTF-8 bytes: the one token the `ns` column of
/// `search_fts` holds for it (SQLite's `hex()`, which the indexing trigger applies).
fn hex(namespace: &str) -> String {
    namespace.bytes().map(|b| format!("{b:02X}")).collect()
}

/// A search hit as stored: the SQLite side of [`SearchHit`].
#[derive(sqlx::FromRow)]
pub(super) struct HitRow {
    pub(super) event_id: Uuid,
    pub(super) ts: i64,
    pub(super) event_type: String,
    pub(super) source: String,
    pub(super) score: f64,
}

impl HitRow {
    pub(super) fn into_hit(self) -> SearchHit {
        SearchHit {
            event_id: self.event_id,
            timestamp: instant(self.ts),
            event_type: self.event_type,
            source: self.source,
            score: self.score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_hex_like_sqlite() {
        assert_eq!(hex("acme"), "61636D65");
        assert_eq!(hex("é"), "C3A9");
    }
}
