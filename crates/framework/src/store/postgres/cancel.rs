//! Cancelling events by id or by idempotency key: one statement (`sql/cancel.sql`).

use sqlx::PgPool;

use super::raw_ids;
use crate::error::Result;
use crate::event::EventId;
use crate::store::{cancel_outcome, CancelReport};

const CANCEL: &str = include_str!("sql/cancel.sql");

/// Cancel `ids`, or with `key` the event that idempotency key names (see
/// [`Store::cancel`](crate::Store::cancel)).
pub(super) async fn cancel(
    pool: &PgPool,
    namespace: &str,
    ids: &[EventId],
    key: Option<&str>,
    reason: &str,
) -> Result<CancelReport> {
    if ids.is_empty() && key.is_none() {
        return Ok(CancelReport::default());
    }
    let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(CANCEL)
        .bind(namespace)
        .bind(raw_ids(ids))
        .bind(reason)
        .bind(key)
        .fetch_all(pool)
        .await?;
    let results = rows
        .into_iter()
        .map(|(id, before, after)| {
            (
                EventId(id),
                cancel_outcome(before.as_deref(), after.as_deref()),
            )
        })
        .collect();
    Ok(CancelReport { results })
}
