//! Running hooks: synchronous ones inline under `catch_unwind`, asynchronous ones on a task
//! each behind a bounded queue, with every failure counted in [`HookFailures`].

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::HookEvent;
use crate::error::panic_message;

/// A synchronous hook.
pub(crate) type SyncHook = Arc<dyn Fn(&HookEvent) + Send + Sync>;

/// An asynchronous hook as registered: the function, its queue's capacity and its timeout.
#[derive(Clone)]
pub(crate) struct AsyncHook {
    pub(crate) run: Arc<dyn Fn(Arc<HookEvent>) -> BoxFuture<'static, ()> + Send + Sync>,
    pub(crate) capacity: usize,
    pub(crate) timeout: Duration,
}

impl AsyncHook {
    pub(crate) fn new<F, Fut>(hook: F, capacity: usize, timeout: Duration) -> Self
    where
        F: Fn(Arc<HookEvent>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            run: Arc::new(move |event| hook(event).boxed()),
            capacity,
            timeout,
        }
    }
}

/// How often a pool's hooks failed. Cloned handles share the counts.
#[derive(Debug, Clone, Default)]
pub struct HookFailures(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    panicked: AtomicU64,
    timed_out: AtomicU64,
    dropped: AtomicU64,
}

impl HookFailures {
    /// Hook calls that panicked (caught; the worker carried on).
    pub fn panicked(&self) -> u64 {
        self.0.panicked.load(Ordering::Relaxed)
    }

    /// Async hook calls cut off at their timeout.
    pub fn timed_out(&self) -> u64 {
        self.0.timed_out.load(Ordering::Relaxed)
    }

    /// Records an async hook never saw because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// All of the above.
    pub fn total(&self) -> u64 {
        self.panicked() + self.timed_out() + self.dropped()
    }
}

/// A running pool's hooks: what workers, maintenance and schedulers call [`fire`](Self::fire) on.
pub(crate) struct Hooks {
    sync: Vec<SyncHook>,
    queues: Vec<mpsc::Sender<Arc<HookEvent>>>,
    failures: HookFailures,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("sync", &self.sync.len())
            .field("async", &self.queues.len())
            .field("failures", &self.failures)
            .finish()
    }
}

impl Hooks {
    /// Start a task per async hook on `tasks`; they end once every clone of the returned
    /// `Hooks` is dropped and their queues are empty.
    pub(crate) fn start(
        sync: Vec<SyncHook>,
        asyncs: &[AsyncHook],
        failures: HookFailures,
        tasks: &mut JoinSet<()>,
    ) -> Arc<Self> {
        let queues = asyncs
            .iter()
            .map(|hook| {
                let (tx, rx) = mpsc::channel(hook.capacity);
                tasks.spawn(drain(hook.clone(), rx, failures.clone()));
                tx
            })
            .collect();
        Arc::new(Self {
            sync,
            queues,
            failures,
        })
    }

    /// Whether any hook is registered: callers skip building records when not.
    pub(crate) fn active(&self) -> bool {
        !self.sync.is_empty() || !self.queues.is_empty()
    }

    /// Give `event()` to every hook. Never blocks and never panics.
    pub(crate) fn fire(&self, event: impl FnOnce() -> HookEvent) {
        if !self.active() {
            return;
        }
        let event = event();
        for hook in &self.sync {
            if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| hook(&event))) {
                self.failures.0.panicked.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(hook.panic = %panic_message(&*panic), "a hook panicked; the worker carries on");
            }
        }
        if self.queues.is_empty() {
            return;
        }
        let event = Arc::new(event);
        for queue in &self.queues {
            if queue.try_send(event.clone()).is_err() {
                self.failures.0.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("an async hook's queue is full; record dropped");
            }
        }
    }
}

/// Run `hook` on each record of `rx`, one at a time, each cut off at the hook's timeout.
async fn drain(hook: AsyncHook, mut rx: mpsc::Receiver<Arc<HookEvent>>, failures: HookFailures) {
    while let Some(event) = rx.recv().await {
        // the call itself runs inside the guarded future: a panic before its first await is caught too
        let call = AssertUnwindSafe(async { (hook.run)(event).await }).catch_unwind();
        match tokio::time::timeout(hook.timeout, call).await {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => {
                failures.0.panicked.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(hook.panic = %panic_message(&*panic), "an async hook panicked; it keeps running");
            }
            Err(_) => {
                failures.0.timed_out.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(timeout = ?hook.timeout, "an async hook timed out; its call was dropped");
            }
        }
    }
}
