//! [`KeywordIndexHandler`]: IndexRecord[raw] → `events_raw`.

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError};

use crate::events::IndexRecord;
use crate::policy::RetryPolicy;

/// Writes the events of `keyword` records to the full-text index. (stub: to be written)
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
    const BATCH_SIZE: usize = 1;

    async fn handle(&self, _batch: Batch<IndexRecord>, _ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        todo!()
    }

    fn backoff(&self, attempt: u32) -> std::time::Duration {
        self.policy.backoff(attempt)
    }

    fn max_retries(&self) -> u32 {
        self.policy.max_retries
    }
}

/// Full-text search over one namespace's events, best first. (stub)
///
/// # Errors
/// [`crate::Error::InvalidQuery`] for an empty query; database errors.
pub async fn keyword_search(
    _pool: &sqlx::PgPool,
    _namespace: &str,
    _query: &str,
    _limit: u32,
) -> crate::Result<Vec<crate::SearchHit>> {
    todo!()
}
