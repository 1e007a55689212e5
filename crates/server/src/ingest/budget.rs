//! [`Budget`]: the request bytes all ingestion requests may hold at once (the wire body, then
//! each step of its inflation), charged before they are allocated; past it a request is
//! refused (503 with `Retry-After`) instead of the server running out of memory.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Units of the budget: one permit per KiB.
const BUDGET_UNIT: usize = 1024;

/// The budget is spent: the caller answers 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server holds its limit of request bytes in flight; retry shortly")]
pub(crate) struct BudgetSpent;

/// The bytes every request holds at once, server-wide.
#[derive(Debug, Clone)]
pub(crate) struct Budget(Arc<Semaphore>);

impl Budget {
    pub(crate) fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new((bytes / BUDGET_UNIT).max(1))))
    }

    /// Charge `bytes` more to `held`, or 503 when the budget is spent.
    pub(crate) fn charge(
        &self,
        held: &mut Option<OwnedSemaphorePermit>,
        bytes: usize,
    ) -> Result<(), BudgetSpent> {
        let units = u32::try_from(bytes.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
        let permit = self
            .0
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| BudgetSpent)?;
        match held {
            Some(p) => p.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}
