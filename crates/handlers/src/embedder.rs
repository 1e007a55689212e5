//! [`Embedder`]: text → vector, behind a trait so the model is swappable; and the default,
//! [`HashingEmbedder`], which needs no model download.

use async_trait::async_trait;

/// Why an embedding failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EmbedError(pub String);

/// Turns texts into vectors whose cosine similarity reflects how alike the texts are.
///
/// Implement it to plug in a real model (a local ONNX model, an HTTP embedding service):
/// the [`VectorIndexHandler`](crate::VectorIndexHandler) calls [`embed`](Self::embed) once
/// per batch of up to 100 texts, and similarity search calls it for the query. An `Err`
/// makes the handler retry the batch with its [`RetryPolicy`](crate::RetryPolicy).
#[async_trait]
pub trait Embedder: Send + Sync + std::fmt::Debug + 'static {
    /// The length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// One vector per text, in order, each of [`dimensions`](Self::dimensions) length.
    ///
    /// # Errors
    /// [`EmbedError`] when the texts cannot be embedded (a model or service failure).
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The default embedder (stub: to be written).
#[derive(Debug, Clone, Default)]
pub struct HashingEmbedder {}

#[async_trait]
impl Embedder for HashingEmbedder {
    fn dimensions(&self) -> usize {
        256
    }

    async fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        todo!()
    }
}
