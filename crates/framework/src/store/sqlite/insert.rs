//! Inserting events: the one write path for publish, publish-in-transaction and emitted events.

use sqlx::SqliteConnection;

use super::millis;
use crate::error::Result;
use crate::event::{NewEvent, Queue};
use crate::store::insert::{report_and_due, InsertedRow};
use crate::store::PublishReport;

const INSERT: &str = include_str!("sql/insert.sql");

#[derive(serde::Serialize)]
struct Row<'a> {
    event_type: &'a str,
    routing_key: &'a str,
    payload: &'a str,
    delay_ms: i64,
    fairness_key: &'a str,
    idempotency_key: Option<&'a str>,
    causation_id: Option<i64>,
    correlation_id: Option<String>,
}

/// Insert `events` in one statement at `now`; report, in input order, which were stored,
/// and the queues that got a due event (to wake after the commit).
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    namespace: &str,
    events: &[NewEvent],
    now: i64,
) -> Result<(PublishReport, Vec<Queue>)> {
    if events.is_empty() {
        return Ok((PublishReport::default(), Vec::new()));
    }
    let rows: Vec<Row<'_>> = events
        .iter()
        .map(|e| Row {
            event_type: &e.event_type,
            routing_key: e.routing_key.as_deref().unwrap_or_default(),
            payload: &e.payload,
            delay_ms: millis(e.delay),
            fairness_key: e.fairness_key.as_deref().unwrap_or_default(),
            idempotency_key: e.idempotency_key.as_deref(),
            causation_id: e.causation_id.map(|id| id.0),
            correlation_id: e.correlation_id.map(|id| id.to_string()),
        })
        .collect();
    let inserted: Vec<InsertedRow> = sqlx::query_as(INSERT)
        .bind(namespace)
        .bind(serde_json::to_string(&rows)?)
        .bind(now)
        .fetch_all(conn)
        .await?;

    let keys = rows.iter().map(|row| row.idempotency_key);
    Ok(report_and_due(keys, &inserted))
}
