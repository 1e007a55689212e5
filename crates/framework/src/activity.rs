//! The pool's activity: per queue, in process, fixed log-scale histograms of wait and run
//! times and completed/failed counts per minute ([`QueueTally`]), and the heartbeat task
//! that writes them with the pool's own row ([`Heartbeat::run`]). A handful of statements
//! per heartbeat interval, whatever the event rate; the workers only take a short lock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::event::Queue;
use crate::store::histogram::{self, BUCKETS};
use crate::store::{minute_of, ActivityMinute, ClaimedEvent, Store, WorkerInfo};

/// One minute's counts of one queue in this pool.
#[derive(Debug, Clone)]
struct Minute {
    wait: Vec<u64>,
    run: Vec<u64>,
    completed: u64,
    failed: u64,
    /// Changed since the heartbeat last wrote it.
    dirty: bool,
}

impl Default for Minute {
    fn default() -> Self {
        Self {
            wait: vec![0; BUCKETS],
            run: vec![0; BUCKETS],
            completed: 0,
            failed: 0,
            dirty: false,
        }
    }
}

/// One queue's recent minutes in this pool, shared by its workers and the heartbeat.
#[derive(Debug)]
pub(crate) struct QueueTally {
    queue: Queue,
    minutes: Mutex<BTreeMap<DateTime<Utc>, Minute>>,
}

impl QueueTally {
    pub(crate) fn new(queue: Queue) -> Arc<Self> {
        Arc::new(Self {
            queue,
            minutes: Mutex::new(BTreeMap::new()),
        })
    }

    fn update(&self, at: DateTime<Utc>, f: impl FnOnce(&mut Minute)) {
        let mut minutes = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        let minute = minutes.entry(minute_of(at)).or_default();
        f(minute);
        minute.dirty = true;
    }

    /// Record the wait of each event of a batch claimed just now.
    pub(crate) fn claimed(&self, rows: &[ClaimedEvent]) {
        let now = Utc::now();
        self.update(now, |m| {
            for row in rows {
                let wait = (now - row.due_at).to_std().unwrap_or(Duration::ZERO);
                m.wait[histogram::bucket(wait)] += 1;
            }
        });
    }

    /// Record a committed batch of `events` that ran `run` (claim to completion), with
    /// `completed` delivered and `failed` retried or dead-lettered.
    pub(crate) fn completed(&self, events: usize, run: Duration, completed: u64, failed: u64) {
        self.update(Utc::now(), |m| {
            m.run[histogram::bucket(run)] += events as u64;
            m.completed += completed;
            m.failed += failed;
        });
    }

    /// The minutes changed since the last call, marked written; minutes before the
    /// previous one that are written are forgotten.
    fn take_dirty(&self, now: DateTime<Utc>) -> Vec<ActivityMinute> {
        let keep = minute_of(now) - TimeDelta::minutes(1);
        let mut minutes = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        let dirty = minutes
            .iter_mut()
            .filter(|(_, m)| m.dirty)
            .map(|(at, m)| {
                m.dirty = false;
                ActivityMinute {
                    queue: self.queue.clone(),
                    minute: *at,
                    wait: m.wait.clone(),
                    run: m.run.clone(),
                    completed: m.completed,
                    failed: m.failed,
                }
            })
            .collect();
        minutes.retain(|at, m| *at >= keep || m.dirty);
        dirty
    }

    /// Mark `written` dirty again (its write failed), unless counted since.
    fn unwritten(&self, written: &[ActivityMinute]) {
        let mut minutes = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        for w in written.iter().filter(|w| w.queue == self.queue) {
            minutes
                .entry(w.minute)
                .or_insert_with(|| Minute {
                    wait: w.wait.clone(),
                    run: w.run.clone(),
                    completed: w.completed,
                    failed: w.failed,
                    dirty: true,
                })
                .dirty = true;
        }
    }
}

/// How long a stopping pool tries to write its last heartbeat and remove its row.
const LAST_WRITES: Duration = Duration::from_secs(3);

/// The pool's heartbeat: its row in `conveyor_workers` and its activity rows.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    pub(crate) worker: WorkerInfo,
    pub(crate) interval: Duration,
    pub(crate) tallies: Vec<Arc<QueueTally>>,
}

impl Heartbeat {
    /// Write every `interval` (the first at once) until `stop`, which also cuts a write
    /// short; then write the last counts and delete the pool's row, giving up on both after
    /// [`LAST_WRITES`] (the database may be gone, and a pool's acquire timeout is 30 s by
    /// default): the row then goes stale, as a crashed pool's does.
    pub(crate) async fn run<S: Store>(mut self, store: S, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    let minutes = self.take();
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => {
                            // cut short: the last beat writes these too (a write replaces)
                            self.unwritten(&minutes);
                            break;
                        }
                        () = self.write(&store, &minutes) => {}
                    }
                }
            }
        }
        let last = async {
            self.beat(&store).await;
            store.remove_worker(&self.worker.pool_id).await
        };
        match tokio::time::timeout(LAST_WRITES, last).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error.message = %e, "removing the pool's worker row failed; it goes stale");
            }
            Err(_) => tracing::warn!(
                after_secs = LAST_WRITES.as_secs(),
                "the pool's last heartbeat and worker-row removal gave up; the row goes stale"
            ),
        }
    }

    async fn beat<S: Store>(&mut self, store: &S) {
        let minutes = self.take();
        self.write(store, &minutes).await;
    }

    /// The minutes changed since the last beat (marked written), stamping the beat's time.
    fn take(&mut self) -> Vec<ActivityMinute> {
        let now = Utc::now();
        self.worker.last_seen = now;
        self.tallies
            .iter()
            .flat_map(|t| t.take_dirty(now))
            .collect()
    }

    /// Write the pool's row and `minutes`; when that fails they are marked unwritten.
    async fn write<S: Store>(&self, store: &S, minutes: &[ActivityMinute]) {
        if let Err(e) = store.record_activity(&self.worker, minutes).await {
            tracing::warn!(error.message = %e, "recording the pool's heartbeat failed");
            self.unwritten(minutes);
        }
    }

    /// Mark `minutes` changed again, for the next beat.
    fn unwritten(&self, minutes: &[ActivityMinute]) {
        for tally in &self.tallies {
            tally.unwritten(minutes);
        }
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use std::time::{Duration, Instant};

    use chrono::Utc;
    use sqlx::postgres::PgPoolOptions;
    use tokio_util::sync::CancellationToken;

    use super::{Heartbeat, LAST_WRITES};
    use crate::store::WorkerInfo;
    use crate::PgStore;

    /// A stopping pool whose database is gone (nothing listens on the port, and its pool
    /// would retry connecting for 30 s per write) gives up its last writes after
    /// `LAST_WRITES` instead of waiting out two acquire timeouts.
    #[tokio::test]
    async fn the_last_writes_give_up_when_the_database_is_gone() {
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy("postgres://conveyor@127.0.0.1:1/gone")
            .unwrap();
        let now = Utc::now();
        let heartbeat = Heartbeat {
            worker: WorkerInfo {
                pool_id: "gone".into(),
                host: "test".into(),
                pid: std::process::id(),
                queues: vec![],
                started_at: now,
                last_seen: now,
                heartbeat_ms: 1_000,
                live: true,
            },
            interval: Duration::from_secs(1),
            tallies: vec![],
        };
        let stop = CancellationToken::new();
        let running = tokio::spawn(heartbeat.run(PgStore::new(pool), stop.clone()));
        // the first beat is under way, waiting for a connection
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stopping = Instant::now();
        stop.cancel();
        tokio::time::timeout(LAST_WRITES + Duration::from_secs(5), running)
            .await
            .expect("the heartbeat stopped")
            .unwrap();
        assert!(
            stopping.elapsed() >= LAST_WRITES,
            "the last writes were tried"
        );
    }
}
