//! Activity: per-queue wait and run percentiles, events per minute and live workers
//! ([`Store::activity`](crate::Store::activity)), and the worker pools themselves
//! ([`Store::workers`](crate::Store::workers)).
//!
//! Every pool measures in process (fixed log-scale histograms, see `histogram`) and its
//! heartbeat writes its own rows ([`Store::record_activity`](crate::Store::record_activity),
//! the SPI); readers merge every pool's rows here, the same way on every backend.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;

use super::histogram;
use crate::event::Queue;

/// How many heartbeat intervals a pool stays live without one.
pub(crate) const LIVE_INTERVALS: u32 = 3;
/// How long activity rows (and rows of pools not seen since) are kept: one hour.
pub(crate) const RETENTION: Duration = Duration::from_secs(3600);
/// How many minutes [`QueueActivity::per_minute`] covers.
const MINUTES: i64 = 60;

/// Wait or run time percentiles, in seconds, each the upper bound of its histogram bucket
/// (at most about 19% above the true value); `None` without samples.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    /// How many samples the percentiles are read from.
    pub samples: u64,
    /// The median.
    pub p50: Option<f64>,
    /// The 95th percentile.
    pub p95: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(counts: &[u64]) -> Self {
        Self {
            samples: counts.iter().sum(),
            p50: histogram::quantile(counts, 0.50),
            p95: histogram::quantile(counts, 0.95),
            p99: histogram::quantile(counts, 0.99),
        }
    }
}

/// Events finished in one minute, across every pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MinuteCount {
    /// The minute's start.
    pub minute: DateTime<Utc>,
    /// Events delivered in it.
    pub completed: u64,
    /// Attempts that failed in it (retried or dead-lettered).
    pub failed: u64,
}

/// One queue's recent activity across every worker pool: what tells "stuck" (workers,
/// nothing completes), "slow" (long run or wait times) and "no workers" apart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueActivity {
    /// The queue.
    pub queue: Queue,
    /// Wait time (due, that is the later of `available_at` and `created_at`, to claimed) of
    /// events claimed in the current and the previous minute.
    pub wait: Percentiles,
    /// Run time (claimed to completed) of batches completed in the current and the
    /// previous minute, counted once per event.
    pub run: Percentiles,
    /// Completed and failed events in each of the last 60 minutes, oldest first, the
    /// current minute last (zeros included).
    pub per_minute: Vec<MinuteCount>,
    /// Live worker pools serving the queue (a heartbeat within 3 of their intervals).
    pub workers: u32,
}

/// A running worker pool, as its heartbeat records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerInfo {
    /// The pool's id ([`WorkerPool::id`](crate::WorkerPool::id)).
    pub pool_id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The queues it serves.
    pub queues: Vec<Queue>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
    /// Its heartbeat interval, in milliseconds.
    pub heartbeat_ms: u64,
    /// Whether it is live: its last heartbeat is within 3 intervals (ignored when written).
    pub live: bool,
}

/// One pool's counts for one queue and minute, as its heartbeat writes them (SPI): the
/// minute's totals so far, replacing what the pool wrote for it before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityMinute {
    /// The queue.
    pub queue: Queue,
    /// The minute's start.
    pub minute: DateTime<Utc>,
    /// Wait time histogram (fixed log-scale buckets shared by every pool).
    pub wait: Vec<u64>,
    /// Run time histogram (same buckets).
    pub run: Vec<u64>,
    /// Events delivered.
    pub completed: u64,
    /// Attempts retried or dead-lettered.
    pub failed: u64,
}

/// The start of the minute `at` is in.
pub(crate) fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

/// The earliest activity row a reader at `now` needs (older ones may be pruned).
pub(crate) fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    minute_of(now) - TimeDelta::minutes(MINUTES - 1)
}

/// Rows older than this at `now` are pruned.
pub(crate) fn prune_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now - TimeDelta::from_std(RETENTION).unwrap_or_default()
}

/// Whether a pool last seen at `last_seen` with heartbeat `interval_ms` is live at `now`.
pub(crate) fn is_live(now: DateTime<Utc>, last_seen: DateTime<Utc>, interval_ms: u64) -> bool {
    let grace = i64::try_from(interval_ms.saturating_mul(u64::from(LIVE_INTERVALS)));
    last_seen >= now - TimeDelta::milliseconds(grace.unwrap_or(i64::MAX / 2))
}

/// Count histogram buckets from their stored integers (negative ones as zero).
pub(crate) fn counts(stored: &[i64]) -> Vec<u64> {
    stored
        .iter()
        .map(|n| u64::try_from(*n).unwrap_or(0))
        .collect()
}

/// Merge every pool's rows (read since [`window_start`]) and the pools into one entry per
/// queue: `queue` alone when given (even without rows), else every queue with rows or a
/// live pool serving it.
pub(crate) fn summarize(
    now: DateTime<Utc>,
    rows: Vec<ActivityMinute>,
    workers: &[WorkerInfo],
    queue: Option<&Queue>,
) -> Vec<QueueActivity> {
    let recent = minute_of(now) - TimeDelta::minutes(1);
    let first = window_start(now);
    let mut queues: BTreeSet<Queue> = BTreeSet::new();
    match queue {
        Some(q) => {
            queues.insert(q.clone());
        }
        None => {
            queues.extend(rows.iter().map(|r| r.queue.clone()));
            let live = workers.iter().filter(|w| w.live);
            queues.extend(live.flat_map(|w| w.queues.iter().cloned()));
        }
    }
    let mut by_queue: BTreeMap<&Queue, Vec<&ActivityMinute>> = BTreeMap::new();
    for row in &rows {
        by_queue.entry(&row.queue).or_default().push(row);
    }
    queues
        .iter()
        .map(|q| {
            let mine = by_queue.get(q).map(Vec::as_slice).unwrap_or_default();
            let (mut wait, mut run) = (Vec::new(), Vec::new());
            let mut minutes: Vec<MinuteCount> = (0..MINUTES)
                .map(|i| MinuteCount {
                    minute: first + TimeDelta::minutes(i),
                    completed: 0,
                    failed: 0,
                })
                .collect();
            for row in mine {
                if row.minute >= recent {
                    histogram::merge(&mut wait, &row.wait);
                    histogram::merge(&mut run, &row.run);
                }
                let index = (row.minute - first).num_minutes();
                if let Some(m) = usize::try_from(index).ok().and_then(|i| minutes.get_mut(i)) {
                    m.completed += row.completed;
                    m.failed += row.failed;
                }
            }
            let serving = workers.iter().filter(|w| w.live && w.queues.contains(q));
            QueueActivity {
                queue: q.clone(),
                wait: Percentiles::of(&wait),
                run: Percentiles::of(&run),
                per_minute: minutes,
                workers: u32::try_from(serving.count()).unwrap_or(u32::MAX),
            }
        })
        .collect()
}

/// An activity row as either backend returns it: `T` an instant (`timestamptz`, or integer
/// milliseconds on SQLite) and `H` a histogram (`bigint[]`, or JSON text on SQLite).
#[derive(sqlx::FromRow)]
pub(crate) struct ActivityRow<T, H> {
    event_type: String,
    routing_key: String,
    minute: T,
    wait: H,
    run: H,
    completed: i64,
    failed: i64,
}

impl<T, H> ActivityRow<T, H> {
    /// The row, with the backend's instants and histograms decoded by `instant` and `hist`.
    pub(crate) fn decode(
        self,
        instant: impl Fn(T) -> DateTime<Utc>,
        hist: impl Fn(H) -> Vec<u64>,
    ) -> ActivityMinute {
        ActivityMinute {
            queue: super::queue(self.event_type, self.routing_key),
            minute: instant(self.minute),
            wait: hist(self.wait),
            run: hist(self.run),
            completed: u64::try_from(self.completed).unwrap_or(0),
            failed: u64::try_from(self.failed).unwrap_or(0),
        }
    }
}

/// A pool's row as either backend returns it (`T` as in [`ActivityRow`]).
#[derive(sqlx::FromRow)]
pub(crate) struct WorkerRow<T> {
    pool_id: String,
    host: String,
    pid: i64,
    queues: String,
    started_at: T,
    last_seen: T,
    interval_ms: i64,
}

impl<T> WorkerRow<T> {
    /// The pool as seen at `now`, instants decoded by `instant`.
    pub(crate) fn decode(
        self,
        now: DateTime<Utc>,
        instant: impl Fn(T) -> DateTime<Utc>,
    ) -> WorkerInfo {
        let last_seen = instant(self.last_seen);
        let heartbeat_ms = u64::try_from(self.interval_ms).unwrap_or(0);
        WorkerInfo {
            pool_id: self.pool_id,
            host: self.host,
            pid: u32::try_from(self.pid).unwrap_or(0),
            // written by `queues_json`; anything else reads as no queues
            queues: serde_json::from_str(&self.queues).unwrap_or_default(),
            started_at: instant(self.started_at),
            last_seen,
            heartbeat_ms,
            live: is_live(now, last_seen, heartbeat_ms),
        }
    }
}

/// `worker`'s queues as stored: a JSON array.
pub(crate) fn queues_json(worker: &WorkerInfo) -> String {
    serde_json::to_string(&worker.queues).unwrap_or_else(|_| "[]".to_owned())
}

/// A histogram's counts as stored integers.
pub(crate) fn stored(counts: &[u64]) -> Vec<i64> {
    counts
        .iter()
        .map(|n| i64::try_from(*n).unwrap_or(i64::MAX))
        .collect()
}

/// The statements both backends run as written (the read of activity rows differs: a cast).
pub(crate) mod sql {
    /// A pool's heartbeat row: $1 namespace, $2 pool id, $3 host, $4 pid, $5 queues (JSON),
    /// $6 started at, $7 last seen, $8 interval in ms.
    pub(crate) const UPSERT_WORKER: &str = "insert into conveyor_workers \
         (namespace, pool_id, host, pid, queues, started_at, last_seen, interval_ms) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) \
         on conflict (namespace, pool_id) do update set host = excluded.host, pid = excluded.pid, \
         queues = excluded.queues, last_seen = excluded.last_seen, interval_ms = excluded.interval_ms";
    /// A pool's totals for one queue and minute, replacing what it wrote before: $1 namespace,
    /// $2 event type, $3 queue key, $4 pool id, $5 minute, $6 wait, $7 run, $8 completed, $9 failed.
    pub(crate) const UPSERT_MINUTE: &str = "insert into conveyor_queue_activity \
         (namespace, event_type, routing_key, pool_id, minute, wait, run, completed, failed) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         on conflict (namespace, pool_id, event_type, routing_key, minute) do update \
         set wait = excluded.wait, run = excluded.run, completed = excluded.completed, \
         failed = excluded.failed";
    /// Activity rows of namespace $1 before $2.
    pub(crate) const PRUNE_MINUTES: &str =
        "delete from conveyor_queue_activity where namespace = $1 and minute < $2";
    /// Pool rows of namespace $1 not seen since $2.
    pub(crate) const PRUNE_WORKERS: &str =
        "delete from conveyor_workers where namespace = $1 and last_seen < $2";
    /// Pool $2's row in namespace $1.
    pub(crate) const REMOVE_WORKER: &str =
        "delete from conveyor_workers where namespace = $1 and pool_id = $2";
    /// The pools of namespace $1, oldest first.
    pub(crate) const WORKERS: &str =
        "select pool_id, host, pid, queues, started_at, last_seen, interval_ms \
         from conveyor_workers where namespace = $1 order by started_at, pool_id";
}
