//! Cancelling events: what a cancel did to each event ([`CancelReport`]), shared by both
//! backends.

use super::EventStatus;
use crate::event::EventId;

/// What [`Store::cancel`](crate::Store::cancel) did to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// It was pending (due, scheduled or waiting for a retry) and is now cancelled.
    Cancelled,
    /// It is running (claimed by a worker): the request is recorded, and the event becomes
    /// cancelled when its batch completes unless the handler delivered it (River's rule for
    /// a running job).
    Requested,
    /// It was already finished (delivered, dead or cancelled) and stays so.
    Unchanged(EventStatus),
    /// No event has this id in the store's namespace.
    NotFound,
}

/// What a cancel did, one entry per id asked for, in input order.
///
/// # Example
/// ```
/// use conveyor::{CancelOutcome, EventStatus, Message, SqliteStore, Store};
/// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
/// # struct OrderPlaced { #[garde(length(min = 1))] order_id: String }
/// # impl conveyor::Event for OrderPlaced { const NAME: &'static str = "order_placed"; }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> conveyor::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("conveyor-doc-cancel-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let store = SqliteStore::open(dir.join("app.db")).await?;
/// let order = Message::new(OrderPlaced { order_id: "o-1".into() }).idempotency_key("o-1");
/// let id = store.publish(order).await?.id().unwrap();
///
/// let report = store.cancel_by_key("o-1", "customer withdrew the order").await?;
/// assert_eq!(report.results, [(id, CancelOutcome::Cancelled)]);
/// let again = store.cancel(&[id], "twice").await?;
/// assert_eq!(again.results, [(id, CancelOutcome::Unchanged(EventStatus::Cancelled))]);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct CancelReport {
    /// Each id with its outcome, in input order.
    pub results: Vec<(EventId, CancelOutcome)>,
}

impl CancelReport {
    /// The ids that were not cancelled and will not be: finished already, or not found.
    pub fn refused(&self) -> impl Iterator<Item = (EventId, CancelOutcome)> + '_ {
        self.results.iter().copied().filter(|(_, outcome)| {
            matches!(
                outcome,
                CancelOutcome::Unchanged(_) | CancelOutcome::NotFound
            )
        })
    }
}

/// The outcome for one id from its status `before` the cancel and `after` it (`None` when
/// the cancel did not change the row), on every backend.
pub(crate) fn cancel_outcome(before: Option<&str>, after: Option<&str>) -> CancelOutcome {
    match (after, before) {
        (Some("claimed"), _) => CancelOutcome::Requested,
        (Some(_), _) => CancelOutcome::Cancelled,
        (None, Some(status)) => {
            EventStatus::of_stored(status).map_or(CancelOutcome::NotFound, CancelOutcome::Unchanged)
        }
        (None, None) => CancelOutcome::NotFound,
    }
}

/// Refuse an empty idempotency key in `cancel_by_key`.
pub(crate) fn check_key(key: &str) -> crate::Result<()> {
    if key.is_empty() {
        return Err(crate::Error::Config(
            "cancel_by_key: key must not be empty".into(),
        ));
    }
    Ok(())
}
