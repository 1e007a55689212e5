//! Claiming: one statement, `for update skip locked`, round-robin across fairness groups.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::millis;
use crate::error::Result;
use crate::store::claim::ClaimRow;
use crate::store::{ClaimRequest, ClaimedEvent};

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
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_claimed(Some, |at| at))
        .collect())
}
