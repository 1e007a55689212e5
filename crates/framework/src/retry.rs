//! Retry backoff: exponential, capped, with jitter.
//!
//! Pure functions, so the policy is tested without a clock or a database.

use std::time::Duration;

/// First retry waits about this long.
pub const BASE_DELAY: Duration = Duration::from_secs(1);
/// No retry waits longer than this.
pub const MAX_DELAY: Duration = Duration::from_secs(60 * 60);
/// Jitter spreads each delay over ±this fraction, so a burst of failures does not retry in lockstep.
pub const JITTER: f64 = 0.2;

/// The default backoff before retry number `attempt` (1 for the first retry).
///
/// `BASE_DELAY * 2^(attempt-1)`, capped at [`MAX_DELAY`], spread by ±[`JITTER`].
pub fn backoff(attempt: u32) -> Duration {
    backoff_with(attempt, BASE_DELAY, MAX_DELAY, fastrand::f64())
}

/// [`backoff`] with every input explicit: `unit` in `[0, 1)` picks the point in the jitter band.
///
/// The result never exceeds `cap`, even with jitter.
pub fn backoff_with(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(62);
    let raw = base.as_secs_f64() * 2f64.powi(exp as i32);
    let capped = raw.min(cap.as_secs_f64());
    let spread = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    Duration::from_secs_f64((capped * spread).min(cap.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_without_jitter() {
        let at = |n| backoff_with(n, BASE_DELAY, MAX_DELAY, 0.5);
        assert_eq!(at(1), Duration::from_secs(1));
        assert_eq!(at(2), Duration::from_secs(2));
        assert_eq!(at(5), Duration::from_secs(16));
    }

    #[test]
    fn backoff_is_capped_even_with_jitter() {
        for attempt in [13, 40, u32::MAX] {
            assert_eq!(
                backoff_with(attempt, BASE_DELAY, MAX_DELAY, 0.999),
                MAX_DELAY
            );
        }
        assert!(backoff_with(40, BASE_DELAY, MAX_DELAY, 0.0) < MAX_DELAY);
    }

    #[test]
    fn jitter_stays_within_its_band() {
        for _ in 0..1000 {
            let d = backoff(3).as_secs_f64();
            assert!(
                (4.0 * (1.0 - JITTER)..=4.0 * (1.0 + JITTER)).contains(&d),
                "{d}"
            );
        }
    }

    #[test]
    fn attempt_zero_waits_the_base_delay() {
        assert_eq!(backoff_with(0, BASE_DELAY, MAX_DELAY, 0.5), BASE_DELAY);
    }
}
