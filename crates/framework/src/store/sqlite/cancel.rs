//! Cancelling events: several statements in one write transaction (SQLite has no writable
//! CTEs), so the statuses read are the ones the update acts on.

use super::{id_array, SqliteTx};
use crate::error::Result;
use crate::event::EventId;
use crate::store::{cancel_outcome, CancelReport};

const STATUSES: &str = include_str!("sql/cancel_statuses.sql");
const CANCEL: &str = include_str!("sql/cancel.sql");
const KEY: &str = include_str!("sql/cancel_key.sql");

/// Cancel `ids` (see [`Store::cancel`](crate::Store::cancel)).
pub(super) async fn cancel(
    tx: &mut SqliteTx,
    namespace: &str,
    ids: &[EventId],
    reason: &str,
    now: i64,
) -> Result<CancelReport> {
    if ids.is_empty() {
        return Ok(CancelReport::default());
    }
    let ids_json = id_array(ids);
    let before: std::collections::HashMap<i64, String> = sqlx::query_as(STATUSES)
        .bind(namespace)
        .bind(&ids_json)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    sqlx::query(CANCEL)
        .bind(namespace)
        .bind(&ids_json)
        .bind(reason)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let results = ids
        .iter()
        .map(|id| {
            let before = before.get(&id.0).map(String::as_str);
            let after = match before {
                Some("pending") => Some("cancelled"),
                Some("claimed") => Some("claimed"),
                _ => None,
            };
            (*id, cancel_outcome(before, after))
        })
        .collect();
    Ok(CancelReport { results })
}

/// Cancel the event idempotency key `key` names (see
/// [`Store::cancel_by_key`](crate::Store::cancel_by_key)).
pub(super) async fn cancel_by_key(
    tx: &mut SqliteTx,
    namespace: &str,
    key: &str,
    reason: &str,
    now: i64,
) -> Result<CancelReport> {
    let id: Option<i64> = sqlx::query_scalar(KEY)
        .bind(namespace)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    match id {
        Some(id) => cancel(tx, namespace, &[EventId(id)], reason, now).await,
        None => Ok(CancelReport::default()),
    }
}
