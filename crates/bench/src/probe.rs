//! The payloads and handlers the framework workloads drive: a no-op handler that only
//! counts ([`CountNoop`]), and one that records each event's publish → handle lag
//! ([`RecordLag`]); both report to a [`Tally`] the workload waits on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conveyor::items::{for_each_concurrent, ItemOutcome};
use conveyor::{Batch, Context, Event, EventHandler, HandlerError, Store};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Wake the waiter at least this often to move its progress bar.
const PROGRESS_TICK: Duration = Duration::from_millis(100);

/// The no-op payload.
#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
pub(crate) struct Tick {
    #[garde(skip)]
    pub(crate) n: u64,
}

impl Event for Tick {
    const NAME: &'static str = "bench.noop";
}

/// A payload stamped with its publish instant, in nanoseconds since the UNIX epoch.
#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
pub(crate) struct Stamp {
    #[garde(skip)]
    pub(crate) sent_ns: u64,
}

impl Event for Stamp {
    const NAME: &'static str = "bench.stamp";
}

impl Stamp {
    /// A payload stamped now.
    pub(crate) fn now() -> Self {
        Self { sent_ns: now_ns() }
    }
}

/// Nanoseconds since the UNIX epoch (the clock publisher and handler share in this process).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// How many events the handlers have seen, with a wake-up when a target is reached.
#[derive(Debug)]
pub(crate) struct Tally {
    seen: AtomicU64,
    target: AtomicU64,
    reached: Notify,
}

impl Tally {
    /// A tally at zero.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            seen: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            reached: Notify::new(),
        })
    }

    /// Events seen so far.
    pub(crate) fn seen(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }

    /// Count `n` more events seen.
    pub(crate) fn add(&self, n: usize) {
        let seen = self.seen.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
        if seen >= self.target.load(Ordering::Acquire) {
            self.reached.notify_one();
        }
    }

    /// Wait until `target` events were seen (showing progress on `bar`), then stop the pool
    /// (`stop`, `running`); returns how long the wait took since `started`, or an error when
    /// `timeout` passed first or the pool failed.
    pub(crate) async fn drain(
        &self,
        target: u64,
        timeout: Duration,
        bar: &crate::progress::Bar,
        started: std::time::Instant,
        stop: tokio_util::sync::CancellationToken,
        running: tokio::task::JoinHandle<conveyor::Result<()>>,
    ) -> anyhow::Result<Duration> {
        let drained = self.wait_for(target, timeout, |seen| bar.set(seen)).await;
        let drain = started.elapsed();
        bar.finish();
        stop.cancel();
        anyhow::Context::context(running.await, "worker pool panicked")??;
        anyhow::ensure!(
            drained,
            "drained {} of {target} events within {timeout:?}",
            self.seen()
        );
        Ok(drain)
    }

    /// Wait until `target` events were seen, calling `progress(seen)` now and then; `false`
    /// when `timeout` passed first.
    pub(crate) async fn wait_for(
        &self,
        target: u64,
        timeout: Duration,
        progress: impl Fn(u64),
    ) -> bool {
        self.target.store(target, Ordering::Release);
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.seen();
            progress(seen);
            if seen >= target {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let nap = (deadline - now).min(PROGRESS_TICK);
            tokio::select! {
                () = self.reached.notified() => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }
}

/// Counts what it is handed and does nothing else.
#[derive(Debug)]
pub(crate) struct CountNoop(pub(crate) Arc<Tally>);

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for CountNoop {
    type Event = Tick;
    const BATCH_SIZE: usize = 100;

    async fn handle(&self, batch: Batch<Tick>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        self.0.add(batch.len());
        Ok(())
    }
}

/// Records each event's lag since its [`Stamp`] in milliseconds as its item starts: items
/// run through `conveyor::items::for_each_concurrent`, `item_concurrency` at once, each
/// sleeping `item_work` (simulated I/O) after its lag is taken.
#[derive(Debug, Clone)]
pub(crate) struct RecordLag {
    tally: Arc<Tally>,
    lags: Arc<Mutex<Vec<f64>>>,
    item_concurrency: usize,
    item_work: Duration,
}

impl RecordLag {
    /// A recorder reporting to `tally`.
    pub(crate) fn new(tally: Arc<Tally>, item_concurrency: usize, item_work: Duration) -> Self {
        Self {
            tally,
            lags: Arc::default(),
            item_concurrency,
            item_work,
        }
    }

    /// The lags recorded since the last call, in milliseconds.
    pub(crate) fn take(&self) -> Vec<f64> {
        std::mem::take(&mut *self.lags.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn record(&self, sent_ns: u64) {
        let lag = now_ns().saturating_sub(sent_ns) as f64 / 1e6;
        self.lags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(lag);
    }
}

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for RecordLag {
    type Event = Stamp;

    async fn handle(
        &self,
        batch: Batch<Stamp>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        let n = batch.len();
        for_each_concurrent(batch, ctx, self.item_concurrency, |item| async move {
            self.record(item.payload.sent_ns);
            if !self.item_work.is_zero() {
                tokio::time::sleep(self.item_work).await;
            }
            Ok(ItemOutcome::delivered())
        })
        .await?;
        self.tally.add(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wait_for_returns_once_the_target_is_seen() {
        let tally = Tally::new();
        let adder = tally.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                adder.add(10);
            }
        });
        assert!(tally.wait_for(100, Duration::from_secs(5), |_| {}).await);
        assert_eq!(tally.seen(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_gives_up_at_the_timeout() {
        let tally = Tally::new();
        tally.add(3);
        assert!(!tally.wait_for(4, Duration::from_secs(1), |_| {}).await);
    }
}
