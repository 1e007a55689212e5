//! [`RollupHandler`]: IndexRecord[raw] → the rollups.

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError};

use crate::events::IndexRecord;
use crate::policy::RetryPolicy;

/// Writes the events of `raw` records to the rollups. (stub: to be written)
#[derive(Debug, Clone)]
pub struct RollupHandler {
    policy: RetryPolicy,
}

impl RollupHandler {
    /// A handler retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

#[async_trait]
impl EventHandler for RollupHandler {
    type Event = IndexRecord;
    const ROUTING_KEY: Option<&'static str> = Some("rollup");
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

/// What [`rebuild_rollups`] recomputed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RebuildReport {
    /// Days recomputed.
    pub days: i64,
    /// Events counted from `events_raw`.
    pub events: i64,
}

/// Recompute the rollups of days `from..=to` (UTC) from `events_raw`. (stub)
///
/// # Errors
/// [`crate::Error::InvalidQuery`] if `from > to`; database errors.
pub async fn rebuild_rollups(
    _pool: &sqlx::PgPool,
    _from: chrono::NaiveDate,
    _to: chrono::NaiveDate,
) -> crate::Result<RebuildReport> {
    todo!()
}
