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
const BATCH_QUEUE: &str = include_str!("sql/batch_queue.sql");
/// `COMPLETE_DELIVERED` for the rows of any queue, returning each moved row's queue.
const COMPLETE_DELIVERED_ANY: &str = concat!(
    include_str!("sql/complete_delivered.sql"),
    "returning event_type, routing_key"
);

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
    let mut batch: Option<(String, String)> = None;
    if let Some((first, _)) = completion.outcomes.first() {
        let found: Option<(String, String, bool)> = sqlx::query_as(BATCH_QUEUE)
            .bind(namespace)
            .bind(first.0)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some((event_type, routing_key, limited)) = found {
            if limited {
                tx.wakes
                    .push(crate::store::queue(event_type.clone(), routing_key.clone()));
            }
            batch = Some((event_type, routing_key));
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
            held += deliver(tx, namespace, &completion.worker, &ids, batch, now).await?;
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

/// Mark delivered the held events `ids` (a JSON array) and count them, in the batch's
/// queue first with no rows coming back; rows of other queues, if any, are counted per
/// queue from what the statement returns. Returns how many were held.
async fn deliver(
    tx: &mut SqliteTx,
    namespace: &str,
    worker: &str,
    ids: &[EventId],
    batch: Option<(String, String)>,
    now: i64,
) -> Result<u64> {
    let (wanted, ids) = (ids.len() as u64, id_array(ids));
    let mut held = 0;
    let mut per_queue: BTreeMap<(String, String), i64> = BTreeMap::new();
    if let Some((event_type, routing_key)) = batch {
        held = sqlx::query(COMPLETE_DELIVERED)
            .bind(namespace)
            .bind(worker)
            .bind(&ids)
            .bind(now)
            .bind(&event_type)
            .bind(&routing_key)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        per_queue.insert((event_type, routing_key), held as i64);
    }
    // ids of other queues, or no longer held (then nothing moves)
    if held < wanted {
        let rest: Vec<(String, String)> = sqlx::query_as(COMPLETE_DELIVERED_ANY)
            .bind(namespace)
            .bind(worker)
            .bind(&ids)
            .bind(now)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .fetch_all(&mut **tx)
            .await?;
        held += rest.len() as u64;
        for queue in rest {
            *per_queue.entry(queue).or_default() += 1;
        }
    }
    // claimed -> delivered is counted here, not by the row trigger
    for ((event_type, routing_key), n) in per_queue {
        let moved = Moved {
            delivered: n,
            ..Moved::default()
        };
        counts::count(tx, namespace, &event_type, &routing_key, moved).await?;
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
