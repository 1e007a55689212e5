//! Inserting events: the one write path for publish, publish-in-transaction and emitted events.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::millis;
use crate::error::Result;
use crate::event::{NewEvent, Queue};
use crate::store::insert::{report_and_due, InsertedRow};
use crate::store::PublishReport;

const INSERT: &str = include_str!("sql/insert.sql");
/// The hot path: a batch without idempotency keys (see the statement's comment).
const INSERT_KEYLESS: &str = include_str!("sql/insert_keyless.sql");

/// Insert `events` in one statement and report, in input order, which were stored; their
/// idempotency keys are held for `window`.
pub(crate) async fn insert<'c>(
    executor: impl PgExecutor<'c>,
    namespace: &str,
    window: Duration,
    events: &[NewEvent],
) -> Result<PublishReport> {
    Ok(insert_with(executor, namespace, window, events, true)
        .await?
        .0)
}

/// [`insert`], notifying at commit when `notify`, or else returning the queues that got a
/// due event, for the caller to wake after its commit.
pub(crate) async fn insert_with<'c>(
    executor: impl PgExecutor<'c>,
    namespace: &str,
    window: Duration,
    events: &[NewEvent],
    notify: bool,
) -> Result<(PublishReport, Vec<Queue>)> {
    if events.is_empty() {
        return Ok((PublishReport::default(), Vec::new()));
    }
    let n = events.len();
    let mut event_types = Vec::with_capacity(n);
    let mut routing_keys = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    let mut delays = Vec::with_capacity(n);
    let mut fairness_keys = Vec::with_capacity(n);
    let mut idempotency_keys: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut causation_ids: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut correlation_ids: Vec<Option<Uuid>> = Vec::with_capacity(n);
    let mut priorities: Vec<i16> = Vec::with_capacity(n);
    let mut ordering_keys: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut traceparents: Vec<Option<&str>> = Vec::with_capacity(n);
    for e in events {
        event_types.push(e.event_type.as_str());
        routing_keys.push(e.routing_key.as_deref().unwrap_or_default());
        payloads.push(e.payload.as_str());
        delays.push(millis(e.delay));
        fairness_keys.push(e.fairness_key.as_deref().unwrap_or_default());
        idempotency_keys.push(e.idempotency_key.as_deref());
        causation_ids.push(e.causation_id.map(|id| id.0));
        correlation_ids.push(e.correlation_id);
        priorities.push(e.priority);
        ordering_keys.push(e.ordering_key.as_deref());
        traceparents.push(e.traceparent.as_deref());
    }
    let keyed = idempotency_keys.iter().any(Option::is_some);
    // the keyless statement has no $7 (keys) and no $11 (window); priorities, ordering
    // keys and traceparents come last
    let mut query = sqlx::query_as(if keyed { INSERT } else { INSERT_KEYLESS })
        .bind(namespace)
        .bind(&event_types)
        .bind(&routing_keys)
        .bind(&payloads)
        .bind(&delays)
        .bind(&fairness_keys);
    if keyed {
        query = query.bind(&idempotency_keys);
    }
    query = query
        .bind(&causation_ids)
        .bind(&correlation_ids)
        .bind(notify);
    if keyed {
        query = query.bind(millis(window));
    }
    query = query
        .bind(&priorities)
        .bind(&ordering_keys)
        .bind(&traceparents);
    let mut rows: Vec<InsertedRow> = query.fetch_all(executor).await?;
    if !keyed {
        // ids are assigned in input order (copies after their input's first): sorted, the
        // first rows follow the inputs
        rows.sort_unstable_by_key(|row| row.id);
    }
    let (report, due) = report_and_due(&rows);
    // notified at commit, or else the caller's to wake
    Ok((report, if notify { Vec::new() } else { due }))
}
