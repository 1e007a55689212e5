//! [`VectorIndexHandler`] on SQLite: `IndexRecord[vector]` → `search_embeddings`; and
//! `similar_search`, its read side.

use std::cmp::Ordering;
use std::time::Instant;

use conveyor::{Context, HandlerError, SqliteStore};
use futures::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::deadline::Deadline;
use super::keyword_index::{HitRow, IndexedRow};
use crate::search::IndexRows;
use crate::search::SearchQuery;
use crate::storage_handler::{Records, WriteBatch, Written};
use crate::vector_index::{embed_query, sparse, ROWS_PER_INSERT};
use crate::{Embedder, Result, SearchHit, VectorIndexHandler};

const INSERT_EMBEDDINGS: &str = include_str!("sql/vector_insert_embeddings.sql");
const SCAN: &str = include_str!("sql/vector_scan.sql");

/// The Postgres handler's semantics on SQLite: one embedder call per batch, made **before**
/// the batch's transaction is opened (it holds the database's write lock, which a slow model
/// must not); then one `search_embeddings` row per event, skipped when its key is already
/// stored. Vectors are stored L2-normalised as little-endian `f32` blobs. Queue, batch size
/// and retries are the handler's on every backend.
impl WriteBatch<SqliteStore> for VectorIndexHandler {
    async fn write(&self, batch: &Records, ctx: &mut Context<'_, SqliteStore>) -> Written {
        let rows = IndexRows::from_batch(batch);
        let flat = self.embed_rows(&rows).await?;
        let dims = self.dimensions();
        // statements of bounded size, like the Postgres insert, built before the lock too
        let chunks = (0..rows.len())
            .step_by(ROWS_PER_INSERT)
            .map(|start| {
                let end = (start + ROWS_PER_INSERT).min(rows.len());
                let chunk: Vec<Embedding<'_>> = (start..end)
                    .map(|i| Embedding {
                        row: IndexedRow::new(&rows, i),
                        embedding: hex_f32(&flat[i * dims..(i + 1) * dims]),
                    })
                    .collect();
                serde_json::to_string(&chunk)
            })
            .collect::<Result<Vec<String>, _>>()
            .map_err(HandlerError::fail)?;
        let db = ctx.db().await?;
        for chunk in chunks {
            sqlx::query(INSERT_EMBEDDINGS)
                .bind(chunk)
                .execute(&mut *db)
                .await?;
        }
        Ok(())
    }
}

/// One embedding as [`INSERT_EMBEDDINGS`] reads it from the JSON array.
#[derive(Serialize)]
struct Embedding<'a> {
    #[serde(flatten)]
    row: IndexedRow<'a>,
    /// The hex of the vector's little-endian `f32`s.
    embedding: String,
}

/// The hex of `v` as little-endian `f32`s, as SQLite's `unhex()` reads it into a blob.
fn hex_f32(v: &[f32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(v.len() * 8);
    for b in v.iter().flat_map(|x| x.to_le_bytes()) {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    hex
}

/// [`similar_search`](crate::similar_search) on SQLite: the same parameters, errors, scores
/// and order. The exact brute-force scan reads the namespace's vectors of the query's length
/// and takes the dot product with the query (cosine similarity, both being normalised) in
/// Rust; hits scoring ≤ 0 are dropped, ties go to the newest event. The scan stops once it
/// has run for `q.timeout` (see [`Deadline`]; embedding the query is not counted).
///
/// # Errors
/// As [`crate::similar_search`].
pub(super) async fn similar_search(
    pool: &sqlx::SqlitePool,
    embedder: &dyn Embedder,
    q: SearchQuery<'_>,
) -> Result<Vec<SearchHit>> {
    let vector = embed_query(embedder, &q).await?;
    let (indices, weights) = sparse(&vector);
    if indices.is_empty() {
        // the zero vector is similar to nothing: skip the scan
        return Ok(Vec::new());
    }
    let bytes = i64::try_from(vector.len() * 4).unwrap_or(i64::MAX);
    let mut deadline = Deadline::start(pool, q.timeout).await?;
    let hits = scan(&mut deadline, q.namespace, bytes, &indices, &weights).await;
    deadline.finish().await?;
    let mut hits = hits?;
    hits.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(Ordering::Equal)
            .then(b.ts.cmp(&a.ts))
            .then(a.event_id.cmp(&b.event_id))
    });
    hits.truncate(usize::try_from(q.limit).unwrap_or(usize::MAX));
    Ok(hits.into_iter().map(HitRow::into_hit).collect())
}

/// The namespace's embeddings of `bytes` scored against the sparse query, those scoring > 0,
/// in no order; [`crate::Error::SearchTimeout`] once `deadline` has passed, in SQLite or
/// between rows.
async fn scan(
    deadline: &mut Deadline,
    namespace: &str,
    bytes: i64,
    indices: &[i32],
    weights: &[f64],
) -> Result<Vec<HitRow>> {
    let at = deadline.at();
    let mut rows = sqlx::query_as::<_, StoredRow>(SCAN)
        .bind(namespace)
        .bind(bytes)
        .fetch(deadline.conn());
    let mut hits = Vec::new();
    loop {
        let row = match rows.try_next().await {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                drop(rows);
                return Err(deadline.error(e));
            }
        };
        if Instant::now() >= at {
            drop(rows);
            return Err(deadline.expired());
        }
        let score: f64 = indices
            .iter()
            .zip(weights)
            .map(|(i, w)| f64::from(element(&row.embedding, *i)) * w)
            .sum();
        if score > 0.0 {
            hits.push(HitRow {
                event_id: row.event_id,
                ts: row.ts,
                event_type: row.event_type,
                source: row.source,
                score,
            });
        }
    }
    Ok(hits)
}

/// Element `i` (1-based, as [`sparse`] counts) of a little-endian `f32` blob; 0 outside it
/// (the scan selects only blobs of the query's length).
fn element(blob: &[u8], i: i32) -> f32 {
    let Some(start) = usize::try_from(i - 1).ok().map(|i| i * 4) else {
        return 0.0;
    };
    blob.get(start..start + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0.0, f32::from_le_bytes)
}

/// A stored embedding, as [`SCAN`] selects it.
#[derive(sqlx::FromRow)]
struct StoredRow {
    event_id: Uuid,
    ts: i64,
    event_type: String,
    source: String,
    embedding: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_their_hex() {
        let v = [1.0f32, -0.5, 0.0, f32::MIN_POSITIVE];
        let hex = hex_f32(&v);
        assert_eq!(&hex[..8], "0000803f");
        let blob: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let back: Vec<f32> = (1..=4).map(|i| element(&blob, i)).collect();
        assert_eq!(back, v);
        assert_eq!((element(&blob, 0), element(&blob, 5)), (0.0, 0.0));
    }
}
