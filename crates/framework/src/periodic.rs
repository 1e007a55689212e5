//! [`Periodic`] events: an event published every interval or on a cron expression, once per
//! tick across every process that runs the schedule, and the policy for [`MissedTicks`].
//!
//! The scheduler task of each pool is in `periodic/scheduler.rs`; the exactly-once step is
//! [`Store::publish_tick`](crate::Store::publish_tick).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::event::{Event, Message, NewEvent};

mod scheduler;

pub(crate) use scheduler::run;

/// What a pool does about ticks that passed while no process ran the schedule (a deploy, an
/// outage), and about ticks a scheduler fell behind on.
///
/// Neither policy backfills every missed tick: a schedule that was down for a day does not
/// publish a day of events at once. Oban's cron plugin does not backfill at all (a missed
/// minute is simply skipped), nor do River's periodic jobs (`RunOnStart` runs once at start
/// regardless of what was missed): [`Skip`](Self::Skip) is their behaviour,
/// [`RunLatest`](Self::RunLatest), the default, improves on it for schedules that must not
/// be skipped, such as a daily job whose tick fell during a deploy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissedTicks {
    /// Publish one event for the most recent missed tick, then continue on schedule. At
    /// start this happens only when the schedule has a recorded tick (it ran before, in any
    /// process) older than the most recent scheduled instant: a schedule registered for the
    /// first time waits for its next tick.
    #[default]
    RunLatest,
    /// Publish nothing for missed ticks; continue with the next scheduled one.
    Skip,
}

/// An event a pool publishes on a schedule: every interval ([`every`](Self::every)) or on a
/// cron expression ([`cron`](Self::cron)). Register it with
/// [`PoolBuilder::periodic`](crate::PoolBuilder::periodic).
///
/// **Exactly one event per tick**, however many processes run the schedule: at each tick
/// every pool that has it publishes in one transaction that advances the schedule's last
/// tick (`conveyor_periodic`, keyed by the store's namespace and the schedule's name) only if
/// it was earlier, and inserts the event only when it did. So the pools need no leader, and
/// one that stops does not stop the schedule. River and Oban run periodic jobs on an elected
/// leader only; here any live process publishes the tick, with no election delay after the
/// leader dies. Unlike uniqueness by idempotency key this holds however long ago the tick's
/// event was delivered.
///
/// **Ticks** are the schedule's instants in UTC: for an interval, the multiples of it since
/// the Unix epoch (an hourly schedule ticks on the hour, whenever the process started); for
/// a cron expression, its matching seconds. Every process computes the same instants from
/// its own wall clock (keep clocks in sync; a clock far ahead publishes ticks early). The
/// factory is given the tick's instant, so the payload can carry it. Missed ticks follow the
/// schedule's [`MissedTicks`] policy.
///
/// The name identifies the schedule across processes and restarts: give each schedule its
/// own; renaming one starts it afresh.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use chrono::{DateTime, Utc};
/// use conveyor::{Message, MissedTicks, Periodic, WorkerPool};
///
/// #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
/// struct Rollup { #[garde(skip)] at: DateTime<Utc> }
/// impl conveyor::Event for Rollup { const NAME: &'static str = "rollup"; }
///
/// # async fn run(store: conveyor::PgStore) -> conveyor::Result<()> {
/// let pool = WorkerPool::builder(store)
///     .periodic(Periodic::every("rollup", Duration::from_secs(300), |at| {
///         Message::new(Rollup { at })
///     }))
///     // at 03:00:00 every day; a tick missed during a deploy runs once when a pool starts
///     .periodic(Periodic::cron("nightly", "0 0 3 * * *", |at| Message::new(Rollup { at })))
///     .periodic(
///         Periodic::cron("report", "0 */15 * * * *", |at| Message::new(Rollup { at }))
///             .missed_ticks(MissedTicks::Skip),
///     )
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Periodic {
    pub(crate) name: String,
    /// The schedule, or why it is invalid (reported by `build()`).
    pub(crate) schedule: std::result::Result<Schedule, String>,
    pub(crate) factory: Factory,
    pub(crate) missed: MissedTicks,
}

/// Builds a tick's event from its instant.
pub(crate) type Factory = Arc<dyn Fn(DateTime<Utc>) -> Result<NewEvent> + Send + Sync>;

impl fmt::Debug for Periodic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Periodic")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .field("missed", &self.missed)
            .finish_non_exhaustive()
    }
}

impl Periodic {
    /// Publish `factory(tick)` every `interval`, at the multiples of `interval` since the
    /// Unix epoch (UTC). The interval is a whole number of milliseconds, at least 1 ms.
    ///
    /// Bad settings are reported by [`PoolBuilder::build`](crate::PoolBuilder::build): an
    /// empty or non-printable name, or an interval of zero or with a fraction of a millisecond.
    pub fn every<E, F>(name: impl Into<String>, interval: Duration, factory: F) -> Self
    where
        E: Event,
        F: Fn(DateTime<Utc>) -> Message<E> + Send + Sync + 'static,
    {
        let name = name.into();
        let schedule = Schedule::every(interval);
        Self::new(name, schedule, factory)
    }

    /// Publish `factory(tick)` at every instant matching the cron `expression`, in UTC.
    ///
    /// Six fields with seconds first (`"0 */5 * * * *"`: every five minutes on the minute;
    /// `"* * * * * *"`: every second), or the classic five without seconds (`"*/5 * * * *"`,
    /// at second 0), an optional seventh field for the year, and croner's extensions (`L`,
    /// `W`, `#`, `@daily`, ...; see the [`croner`](https://docs.rs/croner) crate).
    ///
    /// An expression that does not parse is reported by
    /// [`PoolBuilder::build`](crate::PoolBuilder::build) with croner's message, as is an
    /// empty or non-printable name.
    pub fn cron<E, F>(name: impl Into<String>, expression: &str, factory: F) -> Self
    where
        E: Event,
        F: Fn(DateTime<Utc>) -> Message<E> + Send + Sync + 'static,
    {
        let name = name.into();
        let schedule = Schedule::cron(expression);
        Self::new(name, schedule, factory)
    }

    fn new<E, F>(name: String, schedule: std::result::Result<Schedule, String>, factory: F) -> Self
    where
        E: Event,
        F: Fn(DateTime<Utc>) -> Message<E> + Send + Sync + 'static,
    {
        Self {
            name,
            schedule,
            factory: Arc::new(move |tick| factory(tick).into_new_event()),
            missed: MissedTicks::default(),
        }
    }

    /// What to do about missed ticks: [`MissedTicks::RunLatest`] (the default) or
    /// [`MissedTicks::Skip`].
    pub fn missed_ticks(mut self, policy: MissedTicks) -> Self {
        self.missed = policy;
        self
    }

    /// The schedule's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The error `build()` reports for this schedule, if its settings are bad.
    pub(crate) fn check(&self) -> Result<()> {
        if self.name.is_empty() || self.name.chars().any(char::is_control) {
            return Err(Error::Config(format!(
                "periodic event name must be non-empty printable text, got {:?}",
                self.name
            )));
        }
        match &self.schedule {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::Config(format!(
                "periodic event {:?}: {e}",
                self.name
            ))),
        }
    }
}

/// When a schedule ticks.
#[derive(Debug, Clone)]
pub(crate) enum Schedule {
    /// Every this many milliseconds since the Unix epoch.
    Every(i64),
    /// On a cron expression, in UTC.
    Cron(Box<croner::Cron>),
}

impl Schedule {
    fn every(interval: Duration) -> std::result::Result<Self, String> {
        let ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        if ms == 0 || interval.subsec_nanos() % 1_000_000 != 0 || ms == i64::MAX {
            return Err(format!(
                "interval must be a whole number of milliseconds from 1 ms up, got {interval:?}"
            ));
        }
        Ok(Schedule::Every(ms))
    }

    fn cron(expression: &str) -> std::result::Result<Self, String> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(expression)
            .map(|cron| Schedule::Cron(Box::new(cron)))
            .map_err(|e| format!("cron expression {expression:?} does not parse: {e}"))
    }

    /// The latest tick at or before `now`, if the schedule ever ticked.
    pub(crate) fn latest(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(ms) => {
                DateTime::from_timestamp_millis(now.timestamp_millis().div_euclid(*ms) * ms)
            }
            Schedule::Cron(cron) => cron.find_previous_occurrence(&now, true).ok(),
        }
    }

    /// The first tick after `now`, if the schedule ticks again.
    pub(crate) fn next(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(ms) => DateTime::from_timestamp_millis(
                (now.timestamp_millis().div_euclid(*ms) + 1).checked_mul(*ms)?,
            ),
            Schedule::Cron(cron) => cron.find_next_occurrence(&now, false).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn intervals_tick_on_multiples_since_the_epoch() {
        let s = Schedule::every(Duration::from_secs(300)).unwrap();
        let now = at("2026-12-02T10:07:30.250Z");
        assert_eq!(s.latest(now), Some(at("2026-12-02T10:05:00Z")));
        assert_eq!(s.next(now), Some(at("2026-12-02T10:10:00Z")));
        let on_tick = at("2026-12-02T10:10:00Z");
        assert_eq!(s.latest(on_tick), Some(on_tick));
        assert_eq!(s.next(on_tick), Some(at("2026-12-02T10:15:00Z")));
    }

    #[test]
    fn cron_ticks_on_whole_seconds_in_utc() {
        let s = Schedule::cron("0 */5 * * * *").unwrap();
        let now = at("2026-12-02T10:07:30.250Z");
        assert_eq!(s.latest(now), Some(at("2026-12-02T10:05:00Z")));
        assert_eq!(s.next(now), Some(at("2026-12-02T10:10:00Z")));
        let every_second = Schedule::cron("* * * * * *").unwrap();
        assert_eq!(every_second.latest(now), Some(at("2026-12-02T10:07:30Z")));
        assert_eq!(every_second.next(now), Some(at("2026-12-02T10:07:31Z")));
        let on_tick = at("2026-12-02T10:07:31Z");
        assert_eq!(every_second.latest(on_tick), Some(on_tick));
        assert_eq!(every_second.next(on_tick), Some(at("2026-12-02T10:07:32Z")));
        let five_fields = Schedule::cron("*/5 * * * *").unwrap();
        assert_eq!(five_fields.next(now), Some(at("2026-12-02T10:10:00Z")));
    }

    #[test]
    fn bad_settings_name_what_is_wrong() {
        for bad in [Duration::ZERO, Duration::from_micros(1500)] {
            let err = Schedule::every(bad).unwrap_err();
            assert!(err.contains("interval"), "{err}");
        }
        let err = Schedule::cron("every tuesday").unwrap_err();
        assert!(err.contains("\"every tuesday\""), "{err}");
    }
}
