//! [`VectorIndexHandler`] on Postgres, and [`similar_search`], its read side (an exact
//! scan in SQL).

use conveyor::{Context, HandlerError, PgStore};

use super::keyword_index::hits_within;
use crate::embedder::Embedder;
use crate::error::Result;
use crate::search::{IndexRows, SearchHit, SearchQuery};
use crate::storage_handler::{Records, WriteBatch, Written};
use crate::vector_index::{embed_query, sparse, VectorIndexHandler, ROWS_PER_INSERT};

const INSERT_EMBEDDINGS: &str = include_str!("sql/vector_insert_embeddings.sql");
const SIMILAR: &str = include_str!("sql/vector_similar.sql");

impl WriteBatch<PgStore> for VectorIndexHandler {
    async fn write(&self, batch: &Records, ctx: &mut Context<'_, PgStore>) -> Written {
        let rows = IndexRows::from_batch(batch);
        let dims = self.embedder.dimensions();
        let flat = self.embed_rows(&rows).await?;

        // The flat-array insert (see its .sql): one round trip per 2,000 rows instead of one
        // per row, and no 2-d array, which sqlx cannot bind.
        let dims_i32 = i32::try_from(dims).map_err(HandlerError::fail)?;
        let db = ctx.db().await?;
        for start in (0..rows.len()).step_by(ROWS_PER_INSERT) {
            let end = (start + ROWS_PER_INSERT).min(rows.len());
            sqlx::query(INSERT_EMBEDDINGS)
                .bind(&rows.namespaces[start..end])
                .bind(&rows.event_ids[start..end])
                .bind(&rows.timestamps[start..end])
                .bind(&rows.event_types[start..end])
                .bind(&rows.sources[start..end])
                .bind(&flat[start * dims..end * dims])
                .bind(dims_i32)
                .execute(&mut *db)
                .await?;
        }
        Ok(())
    }
}

/// The events of one namespace most similar to `query` by cosine similarity, best first.
///
/// The query is embedded with `embedder` (which must be the one that indexed the events:
/// stored vectors of another length are skipped) and compared with every stored vector of
/// the namespace in SQL. This is an **exact, brute-force scan**: there is no approximate
/// nearest-neighbour index (pgvector is not assumed installed), so each search reads all of
/// the namespace's embeddings, linear in rows × the query's non-zero coordinates. Measured
/// over 10,000 events with the default 256-dimension [`HashingEmbedder`](crate::HashingEmbedder)
/// (a short query has 20–40 non-zeros): 70–140 ms on a busy 2-core machine. Dense queries of
/// a real model cost up to ~6x more (~400 ms per 10,000 rows at 256 dimensions, ~2 s at
/// 1,024). That suits up to tens of thousands of events per namespace; beyond that, move to
/// pgvector's `vector` type with an HNSW index behind this same function.
///
/// Hits with a score ≤ 0 (nothing in common) are dropped, so a query sharing nothing with any
/// event, or with no words at all, returns no hits. Ties go to the newest event.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] when `query` is empty or blank (`q must not be empty`) or `limit`
/// is outside 1..=100; [`crate::Error::Embed`] when the embedder fails or returns a vector of the
/// wrong length; [`crate::Error::SearchTimeout`] when the scan ran past its deadline (5 s, the
/// embedding not counted; see
/// [`PipelineStore::similar_search_within`](crate::PipelineStore::similar_search_within));
/// [`crate::Error::Database`] when the search fails.
pub async fn similar_search(
    pool: &sqlx::PgPool,
    embedder: &dyn Embedder,
    namespace: &str,
    query: &str,
    limit: u32,
) -> Result<Vec<SearchHit>> {
    similar_search_within(pool, embedder, SearchQuery::new(namespace, query, limit)).await
}

/// [`similar_search`] of `q`, whose scan Postgres cancels after `q.timeout`
/// ([`crate::Error::SearchTimeout`]).
pub(crate) async fn similar_search_within(
    pool: &sqlx::PgPool,
    embedder: &dyn Embedder,
    q: SearchQuery<'_>,
) -> Result<Vec<SearchHit>> {
    let vector = embed_query(embedder, &q).await?;
    let dims = vector.len();
    let (indices, weights) = sparse(&vector);
    if indices.is_empty() {
        // the zero vector is similar to nothing: skip the scan
        return Ok(Vec::new());
    }
    let search = sqlx::query_as(SIMILAR)
        .bind(q.namespace)
        .bind(indices)
        .bind(weights)
        .bind(i32::try_from(dims).unwrap_or(i32::MAX))
        .bind(i64::from(q.limit));
    hits_within(pool, search, q.timeout).await
}
