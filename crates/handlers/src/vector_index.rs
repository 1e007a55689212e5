//! [`VectorIndexHandler`]: IndexRecord[vector] → `search_embeddings`; and
//! [`similar_search`], its read side.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError};

use crate::embedder::{normalize, EmbedError, Embedder};
use crate::error::{Error, Result};
use crate::events::IndexRecord;
use crate::keyword_index::{validate, HitRow, IndexRows};
use crate::policy::RetryPolicy;
use crate::search::{begin_with_timeout, timed_out, SearchHit, SEARCH_TIMEOUT};

const INSERT_EMBEDDINGS: &str = include_str!("sql/vector_insert_embeddings.sql");
const SIMILAR: &str = include_str!("sql/vector_similar.sql");

/// The most rows one insert statement carries, so a batch of large records binds arrays of
/// bounded size (2,000 × 256 floats is 2 MB).
pub(crate) const ROWS_PER_INSERT: usize = 2_000;

/// Embeds the events of `vector` [`IndexRecord`]s for similarity search.
///
/// - **Consumes** [`IndexRecord`]s published with routing key `"vector"` (by
///   [`PipelineStore::accept`](crate::PipelineStore::accept) or
///   [`FanOutToIndexBackends`](crate::FanOutToIndexBackends)), up to 100 records per batch.
/// - **Writes** one `search_embeddings` row per event: the [`Embedder`]'s vector of the
///   event's [`search_text`](crate::IngestedEvent::search_text) (the same text the keyword
///   index holds), L2-normalised here whatever the embedder returns, so
///   [`similar_search`]'s dot product is cosine similarity. It emits no events.
/// - **One embedder call per batch**: every text of the batch goes to one
///   [`Embedder::embed`] call. When it fails, or returns the wrong number of vectors or a
///   vector of the wrong length or with non-finite values, the whole batch is retried with
///   the handler's [`RetryPolicy`] and finally dead-lettered; nothing is written.
/// - **Idempotent**: rows are keyed by `(namespace, event_id, timestamp)` and inserted with
///   `on conflict do nothing` in the transaction that completes the batch, so duplicates,
///   retries and batches reprocessed after a crash never store an embedding twice (a
///   reprocessed batch is embedded again, and the new vectors are discarded).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use conveyor::WorkerPool;
/// use conveyor_handlers::{HashingEmbedder, RetryPolicy, VectorIndexHandler};
///
/// # fn build(store: conveyor::PgStore) -> conveyor::Result<()> {
/// let handler = VectorIndexHandler::new(Arc::new(HashingEmbedder::default()), RetryPolicy::default());
/// let pool = WorkerPool::builder(store).register(handler).build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct VectorIndexHandler {
    embedder: Arc<dyn Embedder>,
    policy: RetryPolicy,
}

impl VectorIndexHandler {
    /// A handler embedding with `embedder`, retrying with `policy`.
    pub fn new(embedder: Arc<dyn Embedder>, policy: RetryPolicy) -> Self {
        Self { embedder, policy }
    }

    /// The embedder's vectors of `rows`' texts in one call, checked, normalised and laid end
    /// to end (`dimensions` floats a row). Every backend embeds before it opens the batch's
    /// transaction, so a slow model holds no database lock.
    ///
    /// # Errors
    /// A retryable [`HandlerError`] when the embedder fails or answers with the wrong shape.
    pub(crate) async fn embed_rows(&self, rows: &IndexRows) -> Result<Vec<f32>, HandlerError> {
        let vectors = self
            .embedder
            .embed(&rows.texts)
            .await
            .map_err(|e| HandlerError::retry(format!("embedding {} texts: {e}", rows.len())))?;
        flatten_checked(vectors, rows.len(), self.embedder.dimensions())
            .map_err(HandlerError::retry)
    }

    /// The dimensions of this handler's vectors.
    pub(crate) fn dimensions(&self) -> usize {
        self.embedder.dimensions()
    }
}

#[async_trait]
impl EventHandler for VectorIndexHandler {
    type Event = IndexRecord;
    const ROUTING_KEY: Option<&'static str> = Some("vector");
    const BATCH_SIZE: usize = 100;

    async fn handle(
        &self,
        batch: Batch<IndexRecord>,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let rows = IndexRows::from_batch(&batch);
        if rows.is_empty() {
            return Ok(());
        }
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

    fn backoff(&self, attempt: u32) -> std::time::Duration {
        self.policy.backoff(attempt)
    }

    fn max_retries(&self) -> u32 {
        self.policy.max_retries
    }
}

/// Check an embedder's answer (`expected` vectors of `dims` finite floats), normalise each
/// vector and lay them end to end.
fn flatten_checked(
    vectors: Vec<Vec<f32>>,
    expected: usize,
    dims: usize,
) -> Result<Vec<f32>, EmbedError> {
    if vectors.len() != expected {
        return Err(EmbedError(format!(
            "embedder returned {} vectors for {expected} texts",
            vectors.len()
        )));
    }
    let mut flat = Vec::with_capacity(expected * dims);
    for (i, mut v) in vectors.into_iter().enumerate() {
        check_vector(&v, dims).map_err(|e| EmbedError(format!("vector {i}: {e}")))?;
        normalize(&mut v);
        flat.extend_from_slice(&v);
    }
    Ok(flat)
}

/// `Err` naming the problem when `v` is not `dims` finite floats.
fn check_vector(v: &[f32], dims: usize) -> Result<(), EmbedError> {
    if v.len() != dims {
        return Err(EmbedError(format!(
            "embedder returned a vector of {} dimensions, expected {dims}",
            v.len()
        )));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(EmbedError("embedder returned a non-finite value".into()));
    }
    Ok(())
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
/// [`Error::InvalidQuery`] when `query` is empty or blank (`q must not be empty`) or `limit`
/// is outside 1..=100; [`Error::Embed`] when the embedder fails or returns a vector of the
/// wrong length; [`Error::SearchTimeout`] when the scan ran past its deadline (5 s, the
/// embedding not counted; see
/// [`PipelineStore::similar_search_within`](crate::PipelineStore::similar_search_within));
/// [`Error::Database`] when the search fails.
pub async fn similar_search(
    pool: &sqlx::PgPool,
    embedder: &dyn Embedder,
    namespace: &str,
    query: &str,
    limit: u32,
) -> Result<Vec<SearchHit>> {
    similar_search_within(pool, embedder, namespace, query, limit, SEARCH_TIMEOUT).await
}

/// [`similar_search`] whose scan Postgres cancels after `timeout` ([`Error::SearchTimeout`]).
pub(crate) async fn similar_search_within(
    pool: &sqlx::PgPool,
    embedder: &dyn Embedder,
    namespace: &str,
    query: &str,
    limit: u32,
    timeout: Duration,
) -> Result<Vec<SearchHit>> {
    let vector = embed_query(embedder, query, limit).await?;
    let dims = vector.len();
    let (indices, weights) = sparse(&vector);
    if indices.is_empty() {
        // the zero vector is similar to nothing: skip the scan
        return Ok(Vec::new());
    }
    let mut tx = begin_with_timeout(pool, timeout).await?;
    let rows: Vec<HitRow> = sqlx::query_as(SIMILAR)
        .bind(namespace)
        .bind(&indices)
        .bind(&weights)
        .bind(i32::try_from(dims).unwrap_or(i32::MAX))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| timed_out(e, timeout))?;
    tx.commit().await?;
    Ok(rows.into_iter().map(HitRow::into_hit).collect())
}

/// Check a similarity search's parameters and embed its query: `dimensions` floats,
/// normalised (the zero vector for a text without words).
///
/// # Errors
/// As [`similar_search`], but for the scan.
pub(crate) async fn embed_query(
    embedder: &dyn Embedder,
    query: &str,
    limit: u32,
) -> Result<Vec<f32>> {
    validate(query, limit)?;
    let mut vectors = embedder.embed(&[query.to_owned()]).await?;
    if vectors.len() != 1 {
        return Err(Error::Embed(EmbedError(format!(
            "embedder returned {} vectors for 1 text",
            vectors.len()
        ))));
    }
    let mut vector = vectors.swap_remove(0);
    check_vector(&vector, embedder.dimensions())?;
    normalize(&mut vector);
    Ok(vector)
}

/// The non-zero coordinates of `v`: 1-based indices (as Postgres arrays count) and values.
pub(crate) fn sparse(v: &[f32]) -> (Vec<i32>, Vec<f64>) {
    v.iter()
        .enumerate()
        .filter(|(_, x)| **x != 0.0)
        .filter_map(|(i, x)| Some((i32::try_from(i + 1).ok()?, f64::from(*x))))
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_the_wrong_shape_are_errors_naming_the_mismatch() {
        let err = flatten_checked(vec![vec![1.0; 4]], 2, 4).unwrap_err().0;
        assert_eq!(err, "embedder returned 1 vectors for 2 texts");
        let err = flatten_checked(vec![vec![1.0; 4], vec![1.0; 3]], 2, 4)
            .unwrap_err()
            .0;
        assert_eq!(
            err,
            "vector 1: embedder returned a vector of 3 dimensions, expected 4"
        );
        let err = flatten_checked(vec![vec![f32::NAN; 2]], 1, 2)
            .unwrap_err()
            .0;
        assert!(err.contains("non-finite"), "{err}");
    }

    #[test]
    fn sparse_keeps_non_zero_coordinates_one_based() {
        assert_eq!(
            sparse(&[0.0, 0.5, 0.0, -0.25]),
            (vec![2, 4], vec![0.5, -0.25])
        );
        assert_eq!(sparse(&[0.0; 3]), (vec![], vec![]));
    }

    #[test]
    fn vectors_are_normalised_and_laid_end_to_end() {
        let flat =
            flatten_checked(vec![vec![3.0, 4.0], vec![0.0, 0.0], vec![0.0, 2.0]], 3, 2).unwrap();
        assert_eq!(flat, vec![0.6, 0.8, 0.0, 0.0, 0.0, 1.0]);
    }
}
