//! Claiming: one statement, `for update skip locked`, round-robin across fairness groups.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::millis;
use crate::error::Result;
use crate::event::EventId;
use crate::store::{ClaimRequest, ClaimedEvent};

const CLAIM: &str = include_str!("sql/claim.sql");

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    payload: String,
    attempts: i32,
    fairness_key: String,
    causation_id: Option<i64>,
    correlation_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    last_error: Option<String>,
}

pub(super) async fn claim(
    pool: &PgPool,
    namespace: &str,
    req: ClaimRequest<'_>,
) -> Result<Vec<ClaimedEvent>> {
    let rows: Vec<Row> = sqlx::query_as(CLAIM)
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
        .map(|r| ClaimedEvent {
            id: EventId(r.id),
            payload: r.payload,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            fairness_key: r.fairness_key,
            causation_id: r.causation_id.map(EventId),
            correlation_id: r.correlation_id,
            created_at: r.created_at,
            last_error: r.last_error,
        })
        .collect())
}
