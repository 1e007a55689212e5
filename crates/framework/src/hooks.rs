//! Hooks: callbacks a pool runs at the points of a batch's life (before and after `handle`,
//! after its commit or rollback), at the lease (lost, reaped) and when it publishes, each
//! with a typed [`HookEvent`] record.
//!
//! Register them on the [`PoolBuilder`](crate::PoolBuilder): [`hook`](crate::PoolBuilder::hook)
//! runs a synchronous function on the worker's task (keep it cheap: a counter, a channel
//! send), [`async_hook`](crate::PoolBuilder::async_hook) an async one on a task of its own,
//! fed through a bounded queue: when the queue is full the record is dropped and counted,
//! and each call is cut off at its timeout, so a slow hook never stalls a worker. A hook that
//! panics is caught, logged (`tracing::warn`) and counted; the worker carries on.
//! [`WorkerPool::hook_failures`](crate::WorkerPool::hook_failures) reads the counts.
//!
//! # Example
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use conveyor::{HookEvent, SqliteStore, WorkerPool};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> conveyor::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("conveyor-hooks-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let store = SqliteStore::open(dir.join("app.db")).await?;
//! let committed = Arc::new(AtomicU64::new(0));
//! let count = committed.clone();
//! let pool = WorkerPool::builder(store)
//!     .hook(move |event: &HookEvent| {
//!         if let HookEvent::AfterCommit(batch) = event {
//!             // exactly once per committed batch: count completions here, not in `handle`
//!             count.fetch_add(batch.counts.delivered as u64, Ordering::Relaxed);
//!         }
//!     })
//!     .async_hook(|event: Arc<HookEvent>| async move {
//!         if let HookEvent::AfterRollback(batch, why) = &*event {
//!             eprintln!("{} did not commit: {why}", batch.batch.queue);
//!         }
//!     })
//!     .build()?;
//! assert_eq!(pool.hook_failures().total(), 0);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::event::{EventId, NewEvent, Published, Queue};
use crate::store::Outcome;

mod dispatch;

pub use dispatch::HookFailures;
pub(crate) use dispatch::{AsyncHook, Hooks, SyncHook};

/// A batch as hooks and middleware see it: where it was claimed and what it holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchInfo {
    /// The queue it was claimed from.
    pub queue: Queue,
    /// The handler's type name.
    pub handler: &'static str,
    /// The claiming worker's id (the `claimed_by` of its events).
    pub worker: String,
    /// Each claimed event's id and attempt (1 the first time), in claim order. Events whose
    /// payload does not decode are among them, though they never reach the handler.
    pub events: Vec<(EventId, u32)>,
}

/// How many events of a batch got each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutcomeCounts {
    /// Delivered.
    pub delivered: usize,
    /// Retried later (a retry mark or a batch error).
    pub retried: usize,
    /// Snoozed (back later without using an attempt).
    pub snoozed: usize,
    /// Dead-lettered.
    pub dead: usize,
    /// Cancelled.
    pub cancelled: usize,
}

impl OutcomeCounts {
    /// The counts of `outcomes`.
    pub(crate) fn of(outcomes: &[(EventId, Outcome)]) -> Self {
        let mut counts = Self::default();
        for (_, outcome) in outcomes {
            counts.add(outcome, 1);
        }
        counts
    }

    pub(crate) fn add(&mut self, outcome: &Outcome, n: usize) {
        match outcome {
            Outcome::Delivered => self.delivered += n,
            Outcome::Retry { .. } => self.retried += n,
            Outcome::Snoozed { .. } => self.snoozed += n,
            Outcome::Dead { .. } => self.dead += n,
            Outcome::Cancelled { .. } => self.cancelled += n,
        }
    }

    /// Every event counted.
    pub fn total(&self) -> usize {
        self.delivered + self.retried + self.snoozed + self.dead + self.cancelled
    }

    /// Each outcome's metric label (`delivered`, `retried`, `snoozed`, `dead`, `cancelled`)
    /// with its count.
    pub fn labelled(&self) -> [(&'static str, usize); 5] {
        [
            ("delivered", self.delivered),
            ("retried", self.retried),
            ("snoozed", self.snoozed),
            ("dead", self.dead),
            ("cancelled", self.cancelled),
        ]
    }
}

/// A batch at one point of its life. Fields not known yet at that point are empty: before
/// `handle` there are no outcomes and no durations.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchRecord {
    /// The batch.
    pub batch: Arc<BatchInfo>,
    /// Each event's outcome, in claim order (from after `handle`).
    pub outcomes: Arc<Vec<(EventId, Outcome)>>,
    /// How many events got each outcome (from after `handle`).
    pub counts: OutcomeCounts,
    /// Events the batch emitted (from after `handle`; only delivered items' emits count).
    pub emitted: usize,
    /// The error that failed the whole batch (`handle` returned `Err`, panicked or timed
    /// out), if any; per-item errors are in `outcomes`.
    pub error: Option<String>,
    /// From the claim's end to `handle`'s end: decoding, middleware and the handler.
    pub handle_duration: Option<Duration>,
    /// How long the commit took (after commit or rollback).
    pub commit_duration: Option<Duration>,
}

impl BatchRecord {
    /// `batch` before `handle`: nothing known yet.
    pub(crate) fn before(batch: Arc<BatchInfo>) -> Self {
        Self {
            batch,
            outcomes: Arc::default(),
            counts: OutcomeCounts::default(),
            emitted: 0,
            error: None,
            handle_duration: None,
            commit_duration: None,
        }
    }

    /// `batch` after `handle`: its planned `outcomes`, `emitted` events and batch `error`.
    pub(crate) fn after(
        batch: Arc<BatchInfo>,
        outcomes: &[(EventId, Outcome)],
        emitted: usize,
        error: Option<String>,
        handle_duration: Duration,
    ) -> Self {
        Self {
            counts: OutcomeCounts::of(outcomes),
            outcomes: Arc::new(outcomes.to_vec()),
            emitted,
            error,
            handle_duration: Some(handle_duration),
            ..Self::before(batch)
        }
    }
}

/// Why a batch did not commit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rollback {
    /// The commit failed (a constraint checked at commit, a lost connection): the events stay
    /// claimed until the reaper returns them.
    CommitFailed {
        /// The database's error.
        error: String,
    },
    /// The lease was lost: the reaper had returned some of the events, so the outcomes, the
    /// handler's writes and its emitted events were discarded.
    LeaseLost,
    /// Shutdown timed out while the batch ran: it was dropped and its events released.
    Shutdown,
}

impl fmt::Display for Rollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rollback::CommitFailed { error } => write!(f, "the commit failed: {error}"),
            Rollback::LeaseLost => f.write_str("the lease was lost"),
            Rollback::Shutdown => f.write_str("shutdown aborted the batch"),
        }
    }
}

/// Where published events came from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PublishSource {
    /// Emitted by a batch (`ctx.emit`), made durable by its commit.
    Emitted(Arc<BatchInfo>),
    /// A tick of a periodic event this pool published.
    Periodic {
        /// The periodic event's name.
        name: String,
        /// The tick.
        tick: DateTime<Utc>,
        /// Its id, or the duplicate its idempotency key named.
        published: Published,
    },
}

/// One record a hook receives.
///
/// New variants and fields may come in later versions: match with a `_` arm.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HookEvent {
    /// A claimed batch is about to be decoded and handed to its handler.
    BeforeHandle(BatchRecord),
    /// `handle` returned (or panicked, or timed out): the outcomes are planned, not yet
    /// committed.
    AfterHandle(BatchRecord),
    /// The batch's outcomes committed (with the handler's writes and emitted events): exactly
    /// once per committed batch. A batch the handler failed commits its retries here too.
    AfterCommit(BatchRecord),
    /// The batch did not commit, and why: its events come back (redelivered), so count
    /// nothing as done here.
    AfterRollback(BatchRecord, Rollback),
    /// A heartbeat found fewer of the batch's events held than claimed: the reaper returned
    /// some, so this batch will roll back. Once per batch.
    LeaseLost {
        /// The batch.
        batch: Arc<BatchInfo>,
        /// How many of its events the worker still held.
        held: u64,
    },
    /// The reaper returned expired claims of these queues to them.
    Reaped {
        /// Each queue with returned events, once.
        queues: Vec<Queue>,
    },
    /// The pool published events: a batch's emitted events (after the commit that made them
    /// durable) or a periodic tick. A direct `store.publish` by the application is not seen.
    Published {
        /// Where they came from.
        source: PublishSource,
        /// The events as inserted (one copy per subscription is stored for each).
        events: Arc<Vec<NewEvent>>,
    },
}
