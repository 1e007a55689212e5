//! Completing a batch, and the lease operations on claimed rows: renew and release.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::counts::{self, Moved};
use super::{id_array, millis, SqliteTx};
use crate::error::Result;
use crate::event::{EventId, Queue};
use crate::store::{Completion, Outcome};

const COMPLETE: &str = include_str!("sql/complete.sql");
const COMPLETE_DELIVERED: &str = include_str!("sql/complete_delivered.sql");
const COMPLETE_DELETE: &str = include_str!("sql/complete_delete.sql");
const RENEW: &str = include_str!("sql/renew.sql");
const RELEASE: &str = include_str!("sql/release.sql");
const LIMITED_QUEUE: &str = include_str!("sql/limited_queue.sql");

#[derive(serde::Serialize)]
struct Applied<'a> {
    id: i64,
    status: &'static str,
    delay_ms: i64,
    error: Option<&'a str>,
}

/// Apply the outcomes of rows still held by the worker; returns how many it held. When
/// their queue has a global limit it is woken after the commit (`tx.wakes`): the batch's
/// events all belong to one queue, so the first event names it.
pub(super) async fn apply(
    tx: &mut SqliteTx,
    namespace: &str,
    completion: &Completion,
    now: i64,
) -> Result<u64> {
    if let Some((first, _)) = completion.outcomes.first() {
        let limited: Option<(String, String)> = sqlx::query_as(LIMITED_QUEUE)
            .bind(namespace)
            .bind(first.0)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some((event_type, routing_key)) = limited {
            tx.wakes.push(crate::store::queue(event_type, routing_key));
        }
    }
    let (delivered, others): (Vec<_>, Vec<_>) = completion
        .outcomes
        .iter()
        .partition(|(_, outcome)| matches!(outcome, Outcome::Delivered));
    let mut held = 0;
    if !delivered.is_empty() {
        let ids: Vec<EventId> = delivered.iter().map(|(id, _)| *id).collect();
        if completion.delete_delivered {
            held += sqlx::query(COMPLETE_DELETE)
                .bind(namespace)
                .bind(&completion.worker)
                .bind(id_array(&ids))
                .execute(&mut **tx)
                .await?
                .rows_affected();
        } else {
            let queues: Vec<(String, String)> = sqlx::query_as(COMPLETE_DELIVERED)
                .bind(namespace)
                .bind(&completion.worker)
                .bind(id_array(&ids))
                .bind(now)
                .fetch_all(&mut **tx)
                .await?;
            held += queues.len() as u64;
            // claimed -> delivered is counted here, not by the row trigger
            let mut per_queue: BTreeMap<(String, String), i64> = BTreeMap::new();
            for queue in queues {
                *per_queue.entry(queue).or_default() += 1;
            }
            for ((event_type, routing_key), n) in per_queue {
                let moved = Moved {
                    delivered: n,
                    ..Moved::default()
                };
                counts::count(tx, namespace, &event_type, &routing_key, moved).await?;
            }
        }
    }
    if !others.is_empty() {
        let applied: Vec<Applied> = others
            .iter()
            .map(|(id, outcome)| {
                let (status, delay, error) = outcome.columns();
                Applied {
                    id: id.0,
                    status,
                    delay_ms: millis(delay),
                    error,
                }
            })
            .collect();
        held += sqlx::query(COMPLETE)
            .bind(namespace)
            .bind(&completion.worker)
            .bind(serde_json::to_string(&applied)?)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(held)
}

pub(super) async fn renew(
    tx: &mut SqliteTx,
    namespace: &str,
    worker: &str,
    ids: &[EventId],
    lease: Duration,
    now: i64,
) -> Result<u64> {
    let done = sqlx::query(RENEW)
        .bind(namespace)
        .bind(worker)
        .bind(id_array(ids))
        .bind(now.saturating_add(millis(lease)))
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Release held events; returns how many, and their queues (to wake after the commit).
pub(super) async fn release(
    tx: &mut SqliteTx,
    namespace: &str,
    worker: &str,
    ids: &[EventId],
    uncount: bool,
    now: i64,
) -> Result<(u64, Vec<Queue>)> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(RELEASE)
        .bind(namespace)
        .bind(worker)
        .bind(id_array(ids))
        .bind(i64::from(uncount))
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
    Ok((rows.len() as u64, distinct_queues(pending_only(rows))))
}

/// The `(event_type, routing_key)` of the `(event_type, routing_key, status)` rows that went
/// back to pending (not those a cancel request turned into cancelled): the queues to wake.
pub(super) fn pending_only(rows: Vec<(String, String, String)>) -> Vec<(String, String)> {
    rows.into_iter()
        .filter(|(_, _, status)| status == "pending")
        .map(|(t, k, _)| (t, k))
        .collect()
}

/// The distinct queues of `(event_type, routing_key)` rows.
pub(super) fn distinct_queues(rows: Vec<(String, String)>) -> Vec<Queue> {
    rows.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|(t, k)| super::queue(t, k))
        .collect()
}
