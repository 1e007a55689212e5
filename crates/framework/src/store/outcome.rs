//! What a finished batch commits: an [`Outcome`] per claimed event, in a [`Completion`].

use std::time::Duration;

use crate::event::{EventId, NewEvent};

/// The final state a batch assigns to one claimed event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Handled; the event is delivered.
    Delivered,
    /// Back to pending, claimable again after `delay`.
    Retry {
        /// How long until the event is due again.
        delay: Duration,
        /// Why this attempt failed.
        error: String,
    },
    /// Dead-lettered: never retried unless an operator replays it.
    Dead {
        /// Why the event was given up on.
        error: String,
    },
    /// Back to pending, claimable again after `delay`, without using up an attempt (the
    /// attempt counted at claim is taken back; `last_error` is kept).
    Snoozed {
        /// How long until the event is due again.
        delay: Duration,
    },
    /// Cancelled: never claimed again unless an operator replays it; not an error.
    Cancelled {
        /// Why, kept as the event's `cancel_reason`.
        reason: String,
    },
}

impl Outcome {
    /// What every backend's completion statement writes for it: the status label
    /// (`delivered`, `pending`, `dead`, `cancelled`, or `snoozed`, which the statement stores
    /// as pending and uncounts), the delay until due, and the message: the error to record
    /// (in `last_error` and the error history), or a cancellation's reason.
    pub(crate) fn columns(&self) -> (&'static str, Duration, Option<&str>) {
        match self {
            Outcome::Delivered => ("delivered", Duration::ZERO, None),
            Outcome::Retry { delay, error } => ("pending", *delay, Some(error)),
            Outcome::Dead { error } => ("dead", Duration::ZERO, Some(error)),
            Outcome::Snoozed { delay } => ("snoozed", *delay, None),
            Outcome::Cancelled { reason } => ("cancelled", Duration::ZERO, Some(reason)),
        }
    }
}

/// Everything a finished batch commits at once.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The worker that claimed the batch.
    pub worker: String,
    /// One outcome per claimed event.
    pub outcomes: Vec<(EventId, Outcome)>,
    /// Events the handler emitted, inserted in the same transaction.
    pub emitted: Vec<NewEvent>,
    /// Delete delivered events in the completing statement instead of keeping them for the
    /// pruner (the pool's delivered retention is zero).
    pub delete_delivered: bool,
}
