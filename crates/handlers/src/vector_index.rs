//! [`VectorIndexHandler`]: IndexRecord[vector] → `search_embeddings`.

use std::sync::Arc;

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError};

use crate::embedder::Embedder;
use crate::events::IndexRecord;
use crate::policy::RetryPolicy;

/// Embeds the events of `vector` records. (stub: to be written)
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
}

#[async_trait]
impl EventHandler for VectorIndexHandler {
    type Event = IndexRecord;
    const ROUTING_KEY: Option<&'static str> = Some("vector");
    const BATCH_SIZE: usize = 100;

    async fn handle(&self, _batch: Batch<IndexRecord>, _ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        let _ = &self.embedder;
        todo!()
    }

    fn backoff(&self, attempt: u32) -> std::time::Duration {
        self.policy.backoff(attempt)
    }

    fn max_retries(&self) -> u32 {
        self.policy.max_retries
    }
}

/// The events of one namespace most similar to `query` by cosine similarity, best first. (stub)
///
/// # Errors
/// [`crate::Error::InvalidQuery`] for an empty query; embedding and database errors.
pub async fn similar_search(
    _pool: &sqlx::PgPool,
    _embedder: &dyn Embedder,
    _namespace: &str,
    _query: &str,
    _limit: u32,
) -> crate::Result<Vec<crate::SearchHit>> {
    todo!()
}
