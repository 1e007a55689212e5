//! The framework's error type.

use std::time::Duration;

/// Everything that can go wrong in the framework outside a handler's own logic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A migration could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A payload could not be serialized or deserialized.
    #[error("payload is not valid json for its event type: {0}")]
    Json(#[from] serde_json::Error),

    /// A payload failed its `garde` validation.
    #[error("invalid {event_type} payload: {report}")]
    Validation {
        /// The event type whose payload was rejected.
        event_type: &'static str,
        /// garde's report, naming each failing field.
        report: garde::Report,
    },

    /// Two registered handlers would claim the same queue.
    #[error("handlers {first} and {second} both claim queue {queue}")]
    Conflict {
        /// The contested queue, `event_type` or `event_type:routing_key`.
        queue: String,
        /// The handler registered first.
        first: &'static str,
        /// The handler registered second.
        second: &'static str,
    },

    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The batch's rows are no longer held by this worker (its lease expired and the
    /// reaper returned them to the queue); the batch's transaction was rolled back.
    #[error("lease lost: {held} of {expected} events were still held by worker {worker}")]
    LeaseLost {
        /// The worker that lost the lease.
        worker: String,
        /// How many rows the batch claimed.
        expected: usize,
        /// How many of them it still held.
        held: usize,
    },

    /// Shutdown did not finish within its timeout; in-flight batches were aborted and released.
    #[error("shutdown timed out after {0:?}; in-flight batches were released")]
    ShutdownTimeout(Duration),

    /// A background task of the pool panicked or failed.
    #[error("worker task failed: {0}")]
    Task(String),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message of a caught panic (`panic!("…")` carries a `&str` or a `String`).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
