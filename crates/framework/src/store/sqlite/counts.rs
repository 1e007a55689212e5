//! The queue counters the claim and the delivered completion keep themselves: one upsert
//! per statement and queue for the two transitions every event makes, which the row
//! trigger of `conveyor_queue_counts` leaves out (migration
//! `20261207000001_counted_transitions`). Every other change is counted by the triggers.

use super::SqliteTx;
use crate::error::Result;

const COUNT_TRANSITIONS: &str = include_str!("sql/count_transitions.sql");

/// What one statement moved in one queue through the two self-counted transitions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Moved {
    /// Rows leased: pending -> claimed.
    pub(super) leased: i64,
    /// Of the leased rows, those that were retries (attempts > 0 before the lease).
    pub(super) retries: i64,
    /// Rows completed as delivered: claimed -> delivered.
    pub(super) delivered: i64,
}

/// Add `moved` to the counters of queue (`event_type`, `routing_key`) in `namespace`,
/// in the transaction of the statement that moved the rows.
pub(super) async fn count(
    tx: &mut SqliteTx,
    namespace: &str,
    event_type: &str,
    routing_key: &str,
    moved: Moved,
) -> Result<()> {
    if moved == Moved::default() {
        return Ok(());
    }
    sqlx::query(COUNT_TRANSITIONS)
        .bind(namespace)
        .bind(event_type)
        .bind(routing_key)
        .bind(moved.leased)
        .bind(moved.retries)
        .bind(moved.delivered)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
