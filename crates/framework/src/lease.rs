//! Leases: the heartbeat that keeps a running batch's claim alive, and the maintenance
//! task that reaps expired claims (crash recovery), prunes delivered rows and lets the store
//! clean up after its deletes.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::hooks::{HookEvent, Hooks};
use crate::store::Store;
use crate::wake::Wakers;

/// Expired claims returned to the queue per reaper round.
const REAP_LIMIT: usize = 1_000;
/// Delivered rows deleted per pruner round.
const PRUNE_LIMIT: usize = 10_000;
/// How often the store is asked to clean up after deletes ([`Store::vacuum`]).
const VACUUM_EVERY: Duration = Duration::from_secs(10);

/// Heartbeats renew a lease three times per lease period, so one missed beat is harmless.
pub(crate) fn heartbeat(lease: Duration) -> Interval {
    let period = (lease / 3).max(Duration::from_millis(10));
    let mut beat = interval_at(Instant::now() + period, period);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    beat
}

/// Maintenance settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Maintenance {
    pub(crate) interval: Duration,
    pub(crate) retention: Duration,
}

impl Maintenance {
    /// Reap and prune every `interval` until `stop` is cancelled.
    pub(crate) async fn run<S: Store>(
        self,
        store: S,
        wakers: Wakers,
        hooks: Arc<Hooks>,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut vacuumed = Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match store.reap(REAP_LIMIT).await {
                Ok(queues) => {
                    for queue in &queues {
                        tracing::info!(queue = %queue, "reaped expired claims");
                        wakers.wake(queue);
                    }
                    if !queues.is_empty() {
                        hooks.fire(|| HookEvent::Reaped { queues });
                    }
                }
                Err(e) => tracing::warn!(error.message = %e, "reaping expired claims failed"),
            }
            match store.prune(self.retention, PRUNE_LIMIT).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "pruned delivered events"),
                Err(e) => tracing::warn!(error.message = %e, "pruning delivered events failed"),
            }
            match store.compact_counters().await {
                Ok(0) => {}
                Ok(n) => tracing::trace!(folded = n, "compacted the queue counters"),
                Err(e) => {
                    tracing::warn!(error.message = %e, "compacting the queue counters failed")
                }
            }
            if vacuumed.elapsed() >= VACUUM_EVERY {
                vacuumed = Instant::now();
                match store.vacuum().await {
                    Ok(false) => {}
                    Ok(true) => tracing::debug!("vacuumed the events table"),
                    Err(e) => {
                        tracing::warn!(error.message = %e, "vacuuming the events table failed")
                    }
                }
            }
        }
    }
}
