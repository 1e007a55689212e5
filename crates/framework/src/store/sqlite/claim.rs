//! Claiming: inside one write transaction, round-robin across fairness groups, by
//! priority with aging within each group.
//!
//! The write lock makes the claim exclusive (SQLite has no `SKIP LOCKED` and needs none):
//! one statement reads the gate (paused, a global limit's free room) and walks the fairness
//! groups from the cursor with one index seek each (a recursive query: each statement is a
//! round trip to the connection's thread); give each group an equal share of the batch,
//! pick each share's due events by the priority rule of `Message::priority`, and lease
//! them. Per group, one statement lists the priority levels present (one index seek each)
//! with the highest level's first `share` due events, and one index range per other level
//! gives that level's first `share` due events in due order; the rule's share is among
//! them, as on Postgres (`postgres/sql/claim.sql` says why).

use std::collections::HashMap;

use sqlx::FromRow as _;
use uuid::Uuid;

use super::counts::{self, Moved};
use super::{id_array, instant, millis};
use crate::error::Result;
use crate::event::EventId;
use crate::store::claim::ClaimRow;
use crate::store::{ClaimRequest, ClaimedEvent, MAX_PRIORITY_AGING};

const GROUPS: &str = include_str!("sql/claim_groups.sql");
const TOP_LEVEL: &str = include_str!("sql/claim_top_level.sql");
const PICK: &str = include_str!("sql/claim_pick.sql");
const LEASE: &str = include_str!("sql/claim_lease.sql");
const LEASED: &str = include_str!("sql/claim_leased.sql");
/// `LEASE` returning the leased rows one by one, for a claim of at most [`FEW`].
const LEASE_RETURNING: &str = concat!(
    include_str!("sql/claim_lease.sql"),
    "returning id, payload, attempts, fairness_key, causation_id, correlation_id, created_at,\n",
    "          max(available_at, created_at) as due_at, last_error, ordering_key, traceparent"
);

/// Up to this many events a claim's rows come back one by one from the lease itself; a
/// larger claim reads them back as one JSON row in a second statement. Each row is a
/// hand-off from the connection's thread and each statement a round trip to it: reading
/// 100 rows back as one lifted the drain by 13-17%, and the second statement cost a claim of
/// one event ~0.05 ms of its pickup latency.
const FEW: usize = 8;

/// Lease the picked events `ids` (in the write transaction) and return their rows.
async fn lease(
    tx: &mut super::SqliteTx,
    namespace: &str,
    req: &ClaimRequest<'_>,
    ids: &[EventId],
    now: i64,
) -> Result<Vec<ClaimRow<String, i64>>> {
    let (few, ids) = (ids.len() <= FEW, id_array(ids));
    let lease = sqlx::query(if few { LEASE_RETURNING } else { LEASE })
        .bind(namespace)
        .bind(&ids)
        .bind(req.worker)
        .bind(now)
        .bind(now.saturating_add(millis(req.lease)));
    if few {
        let rows = lease.fetch_all(&mut **tx).await?;
        return Ok(rows
            .iter()
            .map(ClaimRow::from_row)
            .collect::<sqlx::Result<_>>()?);
    }
    lease.execute(&mut **tx).await?;
    let leased: String = sqlx::query_scalar(LEASED)
        .bind(namespace)
        .bind(&ids)
        .bind(req.worker)
        .fetch_one(&mut **tx)
        .await?;
    Ok(serde_json::from_str(&leased)?)
}

/// A row of `claim_groups.sql`: the gate (`part` 0: `paused`, `free`), or a fairness group
/// after the cursor (`part` 1) or up to it (`part` 2).
#[derive(sqlx::FromRow)]
struct GateOrGroup {
    part: i64,
    paused: Option<bool>,
    free: Option<i64>,
    fairness_key: Option<String>,
}

/// A due event that may be picked, with what the priority rule orders by.
#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    priority: i64,
    available_at: i64,
}

impl Candidate {
    /// The claim order: aged events (due at or before `aged_by`) first, oldest first; then
    /// by priority (highest first), due time, id.
    fn order(&self, aged_by: i64) -> (bool, i64, i64, i64, i64) {
        let aged = self.available_at <= aged_by;
        let age = if aged { self.available_at } else { 0 };
        (!aged, age, -self.priority, self.available_at, self.id)
    }
}

pub(super) async fn claim(
    tx: &mut super::SqliteTx,
    namespace: &str,
    req: &ClaimRequest<'_>,
    now: i64,
) -> Result<Vec<ClaimedEvent>> {
    let (event_type, routing_key) = (&req.queue.event_type, &*req.queue.routing_key_str());
    let rows: Vec<GateOrGroup> = sqlx::query_as(GROUPS)
        .bind(namespace)
        .bind(event_type)
        .bind(routing_key)
        .bind(req.fairness_cursor)
        .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
        .fetch_all(&mut **tx)
        .await?;
    let (mut paused, mut free) = (false, None);
    // groups after the cursor first, then from the smallest up to the cursor
    let (mut after, mut upto): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for row in rows {
        match (row.part, row.fairness_key) {
            (1, Some(group)) => after.push(group),
            (2, Some(group)) => upto.push(group),
            _ => (paused, free) = (row.paused.unwrap_or(false), row.free),
        }
    }
    // a global limit: at most its free room, counted under the write lock
    let limit = free.map_or(req.limit, |f| {
        req.limit.min(usize::try_from(f).unwrap_or(0))
    });
    if paused || limit == 0 {
        return Ok(Vec::new());
    }
    let req = &ClaimRequest {
        limit,
        ..req.clone()
    };
    after.sort_unstable();
    upto.sort_unstable();
    let mut groups = after;
    groups.append(&mut upto);
    groups.truncate(req.limit);
    let share = req.limit.div_ceil(groups.len().max(1)).max(1);
    let aged_by = now.saturating_sub(millis(req.priority_aging.min(MAX_PRIORITY_AGING)));
    let mut picked: Vec<Candidate> = Vec::with_capacity(req.limit);
    for group in &groups {
        let want = share.min(req.limit - picked.len());
        if want == 0 {
            break;
        }
        let limit = i64::try_from(want).unwrap_or(i64::MAX);
        // the highest level's due events, and every level (rows without an id)
        let top: Vec<(Option<i64>, i64, Option<i64>)> = sqlx::query_as(TOP_LEVEL)
            .bind(namespace)
            .bind(event_type)
            .bind(routing_key)
            .bind(group)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut levels: Vec<i64> = Vec::new();
        for (id, priority, available_at) in top {
            match id.zip(available_at) {
                Some((id, available_at)) => candidates.push(Candidate {
                    id,
                    priority,
                    available_at,
                }),
                None => levels.push(priority),
            }
        }
        // the other levels, below the highest
        levels.sort_unstable_by(|a, b| b.cmp(a));
        for &level in levels.iter().skip(1) {
            let due: Vec<Candidate> = sqlx::query_as(PICK)
                .bind(namespace)
                .bind(event_type)
                .bind(routing_key)
                .bind(group)
                .bind(level)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut **tx)
                .await?;
            candidates.extend(due);
        }
        candidates.sort_unstable_by_key(|c| c.order(aged_by));
        candidates.truncate(want);
        picked.extend(candidates);
    }
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    // the batch in the rule's order across groups
    picked.sort_unstable_by_key(|c| c.order(aged_by));
    let position: HashMap<i64, usize> = picked.iter().enumerate().map(|(n, c)| (c.id, n)).collect();
    let ids: Vec<EventId> = picked.iter().map(|c| EventId(c.id)).collect();
    let mut rows = lease(tx, namespace, req, &ids, now).await?;
    rows.sort_unstable_by_key(|r| position.get(&r.id).copied());
    let claimed: Vec<ClaimedEvent> = rows
        .into_iter()
        .map(|r| r.into_claimed(|s| Uuid::parse_str(&s).ok(), instant))
        .collect();
    // the lease's pending -> claimed is counted here, not by the row trigger
    let moved = Moved {
        leased: claimed.len() as i64,
        retries: claimed.iter().filter(|c| c.attempts > 1).count() as i64,
        delivered: 0,
    };
    counts::count(tx, namespace, event_type, routing_key, moved).await?;
    Ok(claimed)
}
