//! One worker: the claim → handle → complete loop for one queue.
//!
//! A worker claims a batch, runs it through its handler while a heartbeat renews the lease,
//! and commits the outcomes. After a full batch it claims again at once; otherwise it waits
//! for a wake-up, or `POLL_INTERVAL` at most.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument;

use crate::activity::QueueTally;
use crate::event::{EventId, NewEvent, Queue};
use crate::hooks::{BatchInfo, BatchRecord, HookEvent, Hooks, PublishSource, Rollback};
use crate::lease::heartbeat;
use crate::middleware::Middleware;
use crate::runner::{Layers, Plan, Runner};
use crate::shutdown::Shutdown;
use crate::store::{ClaimRequest, ClaimedEvent, Completion, Store};

/// A registered handler's settings, as its workers need them.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) queue: Queue,
    pub(crate) batch_size: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) claim_timeout: Duration,
    pub(crate) priority_aging: Duration,
    /// Ordering and limit settings, recorded in the database when the pool starts.
    pub(crate) settings: crate::store::QueueSettings,
}

/// How many times a completion without handler writes is retried after a database error.
const COMPLETE_RETRIES: u32 = 3;

pub(crate) struct Worker<S: Store> {
    pub(crate) id: String,
    pub(crate) store: S,
    pub(crate) runner: Arc<dyn Runner<S>>,
    pub(crate) spec: Arc<Spec>,
    pub(crate) wake: watch::Receiver<u64>,
    pub(crate) shutdown: Shutdown,
    /// Delivered events are deleted at completion (delivered retention zero).
    pub(crate) delete_delivered: bool,
    /// The pool's hooks.
    pub(crate) hooks: Arc<Hooks>,
    /// The pool's middleware, then the handler's.
    pub(crate) middleware: Arc<[Arc<dyn Middleware>]>,
    /// The queue's activity in this pool (wait at claim, run and counts at completion).
    pub(crate) tally: Arc<QueueTally>,
}

impl<S: Store> Worker<S> {
    pub(crate) async fn run(mut self) {
        let mut cursor = String::new();
        let mut failures = 0u32;
        loop {
            if self.shutdown.stop_claiming.is_cancelled() {
                return;
            }
            self.wake.borrow_and_update();
            let claimed = self
                .store
                .claim(ClaimRequest {
                    queue: &self.spec.queue,
                    worker: &self.id,
                    limit: self.spec.batch_size,
                    lease: self.spec.claim_timeout,
                    fairness_cursor: &cursor,
                    priority_aging: self.spec.priority_aging,
                })
                .await;
            let rows = match claimed {
                Ok(rows) => {
                    failures = 0;
                    rows
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(worker = %self.id, error.message = %e, "claiming batch failed");
                    let pause = self.spec.poll_interval * failures.min(10);
                    if self.sleep_or_stop(pause).await {
                        return;
                    }
                    continue;
                }
            };
            // finishing an ordered event lets the next of its key run: claim again at once
            let full =
                rows.len() >= self.spec.batch_size || rows.iter().any(|r| r.ordering_key.is_some());
            if !rows.is_empty() {
                self.tally.claimed(&rows);
                cursor = next_cursor(&cursor, &rows);
                if self.shutdown.stop_claiming.is_cancelled() {
                    self.release(&ids(&rows), true).await;
                    return;
                }
                if !self.run_batch(rows).await {
                    return;
                }
            }
            if !full && self.wait_for_work().await {
                return;
            }
        }
    }

    /// Run one batch to completion. Returns false when it was aborted by shutdown.
    async fn run_batch(&self, rows: Vec<ClaimedEvent>) -> bool {
        let ids = ids(&rows);
        let span = tracing::info_span!(
            "conveyor.batch",
            handler = self.spec.name,
            queue = %self.spec.queue,
            worker = %self.id,
            batch_size = rows.len(),
            delivered = tracing::field::Empty,
            retried = tracing::field::Empty,
            dead = tracing::field::Empty,
            cancelled = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        crate::trace::follow(&span, rows.iter().filter_map(|r| r.traceparent.as_deref()));
        async {
            let started = Instant::now();
            // built only for hooks and middleware
            let info = (self.hooks.active() || !self.middleware.is_empty())
                .then(|| Arc::new(self.batch_info(&rows)));
            if let Some(info) = &info {
                self.hooks
                    .fire(|| HookEvent::BeforeHandle(BatchRecord::before(info.clone())));
            }
            let layers = Layers {
                chain: &self.middleware,
                batch: info.as_deref(),
            };
            let mut run = self.runner.run(&self.store, rows, layers);
            let mut beat = heartbeat(self.spec.claim_timeout);
            let mut lost = false;
            let plan = loop {
                tokio::select! {
                    plan = &mut run => break Some(plan),
                    _ = beat.tick() => self.renew(&ids, info.as_ref(), &mut lost).await,
                    () = self.shutdown.abort.cancelled() => break None,
                }
            };
            drop(run); // when aborted: rolls back the handler's transaction
            let Some(plan) = plan else {
                tracing::warn!("shutdown timed out mid-batch; releasing its events");
                self.release(&ids, false).await;
                if let Some(info) = info {
                    let record = BatchRecord::before(info);
                    self.hooks
                        .fire(|| HookEvent::AfterRollback(record, Rollback::Shutdown));
                }
                return false;
            };
            let counts = plan.counts();
            let events = ids.len();
            let span = tracing::Span::current();
            span.record("delivered", counts.delivered);
            span.record("retried", counts.retried + counts.snoozed);
            span.record("dead", counts.dead);
            span.record("cancelled", counts.cancelled);
            let mut record = info.map(|info| {
                let error = plan.error.clone();
                BatchRecord::after(
                    info,
                    &plan.outcomes,
                    plan.emitted.len(),
                    error,
                    started.elapsed(),
                )
            });
            if let Some(record) = &record {
                self.hooks.fire(|| HookEvent::AfterHandle(record.clone()));
            }
            let committing = Instant::now();
            let committed = self.complete(plan).await;
            if committed.is_ok() {
                let failed = counts.retried + counts.dead;
                self.tally.completed(
                    events,
                    started.elapsed(),
                    counts.delivered as u64,
                    failed as u64,
                );
            }
            span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
            tracing::debug!("batch complete");
            if let Some(mut record) = record.take() {
                record.commit_duration = Some(committing.elapsed());
                self.fire_completed(record, committed);
            }
            true
        }
        .instrument(span)
        .await
    }

    /// The batch `rows` as hooks and middleware see it.
    fn batch_info(&self, rows: &[ClaimedEvent]) -> BatchInfo {
        BatchInfo {
            queue: self.spec.queue.clone(),
            handler: self.spec.name,
            worker: self.id.clone(),
            events: rows.iter().map(|r| (r.id, r.attempts)).collect(),
        }
    }

    /// After commit (and the emitted events' publish), or after rollback.
    fn fire_completed(&self, record: BatchRecord, committed: Result<Vec<NewEvent>, Rollback>) {
        match committed {
            Ok(emitted) => {
                let batch = record.batch.clone();
                self.hooks.fire(|| HookEvent::AfterCommit(record));
                if !emitted.is_empty() {
                    self.hooks.fire(|| HookEvent::Published {
                        source: PublishSource::Emitted(batch),
                        events: Arc::new(emitted),
                    });
                }
            }
            Err(why) => self.hooks.fire(|| HookEvent::AfterRollback(record, why)),
        }
    }

    /// Commit a batch's plan, returning its emitted events once committed. On failure the
    /// events stay claimed until the reaper returns them, so nothing is lost; only
    /// completions without handler writes can be retried here.
    async fn complete(&self, plan: Plan<S>) -> Result<Vec<NewEvent>, Rollback> {
        let mut completion = Completion {
            worker: self.id.clone(),
            outcomes: plan.outcomes,
            emitted: plan.emitted,
            delete_delivered: self.delete_delivered,
        };
        let mut tx = plan.tx;
        let mut attempt = 0;
        loop {
            let retryable = tx.is_none();
            match self.store.complete(tx.take(), &completion).await {
                Ok(()) => return Ok(std::mem::take(&mut completion.emitted)),
                Err(e @ crate::Error::LeaseLost { .. }) => {
                    tracing::warn!(error.message = %e, "batch outcome discarded");
                    return Err(Rollback::LeaseLost);
                }
                Err(e) if retryable && attempt < COMPLETE_RETRIES => {
                    attempt += 1;
                    tracing::warn!(error.message = %e, attempt, "completing batch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100) * 4u32.pow(attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "completing batch failed; its events return to the queue when the lease expires");
                    return Err(Rollback::CommitFailed {
                        error: e.to_string(),
                    });
                }
            }
        }
    }

    /// Renew the batch's lease; the first time it finds events lost, `lost` is set and the
    /// hooks are told.
    async fn renew(&self, ids: &[EventId], info: Option<&Arc<BatchInfo>>, lost: &mut bool) {
        match self
            .store
            .renew(&self.id, ids, self.spec.claim_timeout)
            .await
        {
            Ok(n) if n < ids.len() as u64 => {
                tracing::warn!(
                    held = n,
                    claimed = ids.len(),
                    "lease lost mid-batch (the reaper returned events); their outcome will be discarded"
                );
                if let Some(info) = info.filter(|_| !std::mem::replace(lost, true)) {
                    self.hooks.fire(|| HookEvent::LeaseLost {
                        batch: info.clone(),
                        held: n,
                    });
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error.message = %e, "renewing lease failed"),
        }
    }

    async fn release(&self, ids: &[EventId], uncount: bool) {
        if let Err(e) = self.store.release(&self.id, ids, uncount).await {
            tracing::warn!(error.message = %e, "releasing events failed; they return to the queue when the lease expires");
        }
    }

    /// Wait for a wake-up or the poll interval. Returns true when shutdown began.
    async fn wait_for_work(&mut self) -> bool {
        tokio::select! {
            () = self.shutdown.stop_claiming.cancelled() => true,
            changed = self.wake.changed() => {
                if changed.is_err() {
                    // no more wake-ups will come: poll
                    return self.sleep_or_stop(self.spec.poll_interval).await;
                }
                false
            }
            () = tokio::time::sleep(self.spec.poll_interval) => false,
        }
    }

    /// Sleep for `pause`. Returns true when shutdown began meanwhile.
    async fn sleep_or_stop(&self, pause: Duration) -> bool {
        tokio::select! {
            () = self.shutdown.stop_claiming.cancelled() => true,
            () = tokio::time::sleep(pause) => false,
        }
    }
}

fn ids(rows: &[ClaimedEvent]) -> Vec<EventId> {
    rows.iter().map(|r| r.id).collect()
}

/// The fairness group served last in rotation order (groups after `cursor`, then the rest),
/// so the next claim starts after it.
fn next_cursor(cursor: &str, rows: &[ClaimedEvent]) -> String {
    let keys = rows.iter().map(|r| r.fairness_key.as_str());
    let wrapped = keys.clone().filter(|k| *k <= cursor).max();
    wrapped
        .or_else(|| keys.filter(|k| *k > cursor).max())
        .unwrap_or(cursor)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(keys: &[&str]) -> Vec<ClaimedEvent> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| ClaimedEvent {
                id: EventId(i as i64),
                payload: "null".to_owned(),
                attempts: 1,
                fairness_key: (*k).to_owned(),
                causation_id: None,
                correlation_id: None,
                created_at: chrono::Utc::now(),
                due_at: chrono::Utc::now(),
                last_error: None,
                ordering_key: None,
                traceparent: None,
            })
            .collect()
    }

    #[test]
    fn cursor_advances_to_the_last_group_served() {
        assert_eq!(next_cursor("", &rows(&["a", "b", "c"])), "c");
        assert_eq!(next_cursor("", &rows(&["", "a"])), "");
        assert_eq!(next_cursor("b", &rows(&["c", "d"])), "d");
    }

    #[test]
    fn cursor_follows_the_wrap_around() {
        assert_eq!(next_cursor("m", &rows(&["x", "y", "a", "b"])), "b");
    }
}
