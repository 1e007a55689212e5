//! Claiming: inside one write transaction, round-robin across fairness groups.
//!
//! The write lock makes the claim exclusive (SQLite has no `SKIP LOCKED` and needs none):
//! walk the fairness groups from the cursor with one index seek each, give each group an
//! equal share of the batch, pick each share's due events, and lease them.

use uuid::Uuid;

use super::{id_array, instant, millis};
use crate::error::Result;
use crate::event::EventId;
use crate::store::claim::ClaimRow;
use crate::store::{ClaimRequest, ClaimedEvent};

const PAUSED: &str = "select exists (select 1 from conveyor_paused_handlers \
                      where namespace = $1 and event_type = $2 and routing_key = $3)";
const GROUP_FROM: &str = include_str!("sql/claim_group_from.sql");
const GROUP_BETWEEN: &str = include_str!("sql/claim_group_between.sql");
const PICK: &str = include_str!("sql/claim_pick.sql");
const LEASE: &str = include_str!("sql/claim_lease.sql");

/// A leased row, with the due time the batch is ordered by.
#[derive(sqlx::FromRow)]
struct Leased {
    #[sqlx(flatten)]
    row: ClaimRow<String, i64>,
    available_at: i64,
}

pub(super) async fn claim(
    tx: &mut super::SqliteTx,
    namespace: &str,
    req: &ClaimRequest<'_>,
    now: i64,
) -> Result<Vec<ClaimedEvent>> {
    let (event_type, routing_key) = (&req.queue.event_type, &*req.queue.routing_key_str());
    let paused: bool = sqlx::query_scalar(PAUSED)
        .bind(namespace)
        .bind(event_type)
        .bind(routing_key)
        .fetch_one(&mut **tx)
        .await?;
    if paused || req.limit == 0 {
        return Ok(Vec::new());
    }
    // groups after the cursor first, then from the smallest up to the cursor
    let mut groups: Vec<String> = Vec::new();
    for (mut lower, upper) in [
        (successor(req.fairness_cursor), None),
        (String::new(), Some(req.fairness_cursor)),
    ] {
        while groups.len() < req.limit {
            let query = match upper {
                None => sqlx::query_scalar(GROUP_FROM),
                Some(_) => sqlx::query_scalar(GROUP_BETWEEN),
            };
            let group: Option<String> = query
                .bind(namespace)
                .bind(event_type)
                .bind(routing_key)
                .bind(&lower)
                .bind(upper)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(group) = group else { break };
            lower = successor(&group);
            groups.push(group);
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
    let mut rows: Vec<Leased> = sqlx::query_as(LEASE)
        .bind(namespace)
        .bind(id_array(&ids))
        .bind(req.worker)
        .bind(now)
        .bind(now.saturating_add(millis(req.lease)))
        .fetch_all(&mut **tx)
        .await?;
    rows.sort_by_key(|r| (r.available_at, r.row.id));
    Ok(rows
        .into_iter()
        .map(|r| r.row.into_claimed(|s| Uuid::parse_str(&s).ok(), instant))
        .collect())
}

/// The smallest string after `key` in SQLite's binary collation: `key` followed by NUL.
fn successor(key: &str) -> String {
    format!("{key}\0")
}
