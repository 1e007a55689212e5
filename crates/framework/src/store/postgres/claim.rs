//! Claiming: one statement, `for update skip locked`, round-robin across fairness groups,
//! by priority with aging within each group (the rule is in `sql/claim.sql`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::millis;
use crate::error::Result;
use crate::store::claim::ClaimRow;
use crate::store::{ClaimRequest, ClaimedEvent, MAX_PRIORITY_AGING};

const CLAIM: &str = include_str!("sql/claim.sql");

pub(super) async fn claim(
    pool: &PgPool,
    namespace: &str,
    req: ClaimRequest<'_>,
) -> Result<Vec<ClaimedEvent>> {
    let rows: Vec<ClaimRow<Uuid, DateTime<Utc>>> = sqlx::query_as(CLAIM)
        .bind(namespace)
        .bind(&req.queue.event_type)
        .bind(req.queue.routing_key_str())
        .bind(req.worker)
        .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
        .bind(millis(req.lease))
        .bind(req.fairness_cursor)
        .bind(millis(req.priority_aging.min(MAX_PRIORITY_AGING)))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_claimed(Some, |at| at))
        .collect())
}
