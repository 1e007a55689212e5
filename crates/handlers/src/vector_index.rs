//! [`VectorIndexHandler`]: `IndexRecord[vector]` → `search_embeddings`, and what every
//! backend's handler and [`similar_search`](crate::similar_search) share: embedding a batch
//! or a query, checked and normalised.

use std::sync::Arc;

use conveyor::HandlerError;

use crate::embedder::{normalize, EmbedError, Embedder};
use crate::error::{Error, Result};
use crate::policy::RetryPolicy;
use crate::search::{IndexRows, SearchQuery};

/// The most rows one insert statement carries, so a batch of large records binds arrays of
/// bounded size (2,000 × 256 floats is 2 MB).
pub(crate) const ROWS_PER_INSERT: usize = 2_000;

/// Embeds the events of `vector` [`IndexRecord`](crate::IndexRecord)s for similarity search.
///
/// - **Consumes** [`IndexRecord`](crate::IndexRecord)s published with routing key `"vector"` (by
///   [`PipelineStore::accept`](crate::PipelineStore::accept) or
///   [`FanOutToIndexBackends`](crate::FanOutToIndexBackends)), up to 100 records per batch.
/// - **Writes** one `search_embeddings` row per event: the [`Embedder`]'s vector of the
///   event's [`search_text`](crate::IngestedEvent::search_text) (the same text the keyword
///   index holds), L2-normalised here whatever the embedder returns, so
///   [`similar_search`](crate::similar_search)'s dot product is cosine similarity. It emits no events.
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
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) policy: RetryPolicy,
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

/// Check a similarity search's parameters and embed its query: `dimensions` floats,
/// normalised (the zero vector for a text without words).
///
/// # Errors
/// As [`similar_search`](crate::similar_search), but for the scan.
pub(crate) async fn embed_query(embedder: &dyn Embedder, q: &SearchQuery<'_>) -> Result<Vec<f32>> {
    q.check()?;
    let mut vectors = embedder.embed(&[q.query.to_owned()]).await?;
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
