//! [`RetryPolicy`]: how an index backend retries, as configuration rather than constants.

use std::time::Duration;

/// Retries and backoff of one index backend's handler.
///
/// The handlers' `MAX_RETRIES` / `backoff` defaults are constants; the server makes them
/// flags, so an operator (or a test) can make a failing backend give up sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt before a record is dead-lettered. Defaults to 5.
    pub max_retries: u32,
    /// The first retry's delay; each further retry doubles it (with jitter), capped at 1 h.
    /// Defaults to 1 s.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: conveyor::retry::BASE_DELAY,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        conveyor::retry::backoff_with(
            attempt,
            self.base_delay,
            conveyor::retry::MAX_DELAY,
            fastrand::f64(),
        )
    }
}
