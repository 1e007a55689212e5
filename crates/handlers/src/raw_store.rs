//! [`RawStoreHandler`]: IndexRecord[raw] → `events_raw`.

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError};

use crate::events::IndexRecord;
use crate::policy::RetryPolicy;

/// Writes the events of `raw` records to `events_raw`. (stub: to be written)
#[derive(Debug, Clone)]
pub struct RawStoreHandler {
    policy: RetryPolicy,
}

impl RawStoreHandler {
    /// A handler retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

#[async_trait]
impl EventHandler for RawStoreHandler {
    type Event = IndexRecord;
    const ROUTING_KEY: Option<&'static str> = Some("raw");
    const BATCH_SIZE: usize = 20;

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
