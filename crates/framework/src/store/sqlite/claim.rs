//! Claiming: inside one write transaction, round-robin across fairness groups.
//!
//! The write lock makes the claim exclusive (SQLite has no `SKIP LOCKED` and needs none):
//! walk the fairness groups from the cursor with one index seek each, give each group an
//! equal share of the batch, pick each share's due events, and lease them.

use uuid::Uuid;

use super::{id_array, instant, millis};
use crate::error::Result;
use crate::event::EventId;
use crate::store::{ClaimRequest, ClaimedEvent};

const PAUSED: &str = "select exists (select 1 from conveyor_paused_handlers \
                      where namespace = $1 and event_type = $2 and routing_key = $3)";
const NEXT_GROUP: &str = include_str!("sql/claim_next_group.sql");
const PICK: &str = include_str!("sql/claim_pick.sql");
const LEASE: &str = include_str!("sql/claim_lease.sql");

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    payload: String,
    attempts: i64,
    fairness_key: String,
    causation_id: Option<i64>,
    correlation_id: Option<String>,
    created_at: i64,
    last_error: Option<String>,
    available_at: i64,
}

pub(super) async fn claim(
    tx: &mut super::SqliteTx,
    namespace: &str,
    req: &ClaimRequest<'_>,
    now: i64,
) -> Result<Vec<ClaimedEvent>> {
    let (event_type, routing_key) = (&req.queue.event_type, req.queue.routing_key_str());
    let paused: bool = sqlx::query_scalar(PAUSED)
        .bind(namespace)
        .bind(event_type)
        .bind(routing_key)
        .fetch_one(&mut **tx)
        .await?;
    if paused || req.limit == 0 {
        return Ok(Vec::new());
    }
    // groups after the cursor first, then from the start up to the cursor
    let mut groups: Vec<String> = Vec::new();
    for (start, upper) in [(req.fairness_cursor, None), ("", Some(req.fairness_cursor))] {
        let mut after: Option<String> = None;
        // '' is a group too: the first seek of the wrap-around starts below it
        let mut inclusive_start = upper.is_some();
        while groups.len() < req.limit {
            let group: Option<String> = if inclusive_start {
                inclusive_start = false;
                first_group(tx, namespace, event_type, routing_key, upper).await?
            } else {
                sqlx::query_scalar(NEXT_GROUP)
                    .bind(namespace)
                    .bind(event_type)
                    .bind(routing_key)
                    .bind(after.as_deref().unwrap_or(start))
                    .bind(upper)
                    .fetch_one(&mut **tx)
                    .await?
            };
            match group {
                Some(g) => {
                    after = Some(g.clone());
                    groups.push(g);
                }
                None => break,
            }
        }
    }
    let share = req.limit.div_ceil(groups.len().max(1)).max(1);
    let mut picked: Vec<i64> = Vec::with_capacity(req.limit);
    for group in &groups {
        let want = share.min(req.limit - picked.len());
        if want == 0 {
            break;
        }
        let ids: Vec<i64> = sqlx::query_scalar(PICK)
            .bind(namespace)
            .bind(event_type)
            .bind(routing_key)
            .bind(group)
            .bind(now)
            .bind(i64::try_from(want).unwrap_or(i64::MAX))
            .fetch_all(&mut **tx)
            .await?;
        picked.extend(ids);
    }
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<EventId> = picked.iter().copied().map(EventId).collect();
    let mut rows: Vec<Row> = sqlx::query_as(LEASE)
        .bind(namespace)
        .bind(id_array(&ids))
        .bind(req.worker)
        .bind(now)
        .bind(now.saturating_add(millis(req.lease)))
        .fetch_all(&mut **tx)
        .await?;
    rows.sort_by_key(|r| (r.available_at, r.id));
    Ok(rows
        .into_iter()
        .map(|r| ClaimedEvent {
            id: EventId(r.id),
            // unreadable text goes to the handler as a string: its decode dead-letters it
            payload: serde_json::from_str(&r.payload)
                .unwrap_or(serde_json::Value::String(r.payload)),
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            fairness_key: r.fairness_key,
            causation_id: r.causation_id.map(EventId),
            correlation_id: r.correlation_id.and_then(|s| Uuid::parse_str(&s).ok()),
            created_at: instant(r.created_at),
            last_error: r.last_error,
        })
        .collect())
}

/// The smallest pending group up to `upper` (inclusive): the wrap-around's first group.
async fn first_group(
    tx: &mut super::SqliteTx,
    namespace: &str,
    event_type: &str,
    routing_key: &str,
    upper: Option<&str>,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "select min(fairness_key) from conveyor_events
          where status = 'pending' and namespace = $1 and event_type = $2
            and routing_key = $3 and ($4 is null or fairness_key <= $4)",
    )
    .bind(namespace)
    .bind(event_type)
    .bind(routing_key)
    .bind(upper)
    .fetch_one(&mut **tx)
    .await?)
}
