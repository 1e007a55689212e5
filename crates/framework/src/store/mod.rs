//! The storage SPI: every operation the worker pool and operators need from a backend.
//!
//! **Who implements this:** backend authors (Conveyor ships [`PgStore`](crate::PgStore) and
//! [`SqliteStore`](crate::SqliteStore)).
//! Application code *uses* a store (publish, pause, stats, dead letters) but should never
//! need to implement one. Worker code talks only to this trait, and every SQL statement
//! lives inside a backend, so a new backend needs no change to the pool.
//!
//! Semantics every backend must keep (the contract suite in `tests/contract` checks them):
//! - a claimed row is held by exactly one worker until completed, released or reaped;
//! - `complete` applies outcomes, inserts emitted events and commits the handler's own
//!   writes atomically, and only for rows the worker still holds ([`Error::LeaseLost`]
//!   otherwise, with everything rolled back);
//! - everything is scoped to the store's namespace.
//!
//! [`Error::LeaseLost`]: crate::Error::LeaseLost

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::error::Result;
use crate::event::{Event, EventId, Message, NewEvent, Published, Queue};

pub(crate) use activity::sql as activity_sql;
pub(crate) use activity::{
    counts, minute_of, prune_before, queues_json, stored, ActivityRow, WorkerRow,
};
pub use activity::{ActivityMinute, MinuteCount, Percentiles, QueueActivity, WorkerInfo};
pub use admin::{DeadLetter, QueueStats};
pub(crate) use cancel::{cancel_outcome, check_key};
pub use cancel::{CancelOutcome, CancelReport};
pub(crate) use claim::MAX_PRIORITY_AGING;
pub use claim::{ClaimRequest, ClaimedEvent};
pub(crate) use history::attempt_errors;
pub use history::AttemptError;
pub use lookup::{EventFilter, EventPage, EventRecord, EventStatus};
pub(crate) use ordering::ParkedRow;
pub use ordering::{DeadHead, ParkedKey, QueueSettings};
pub use outcome::{Completion, Outcome};
pub use subscription::Subscription;

mod activity;
mod admin;
mod cancel;
mod claim;
pub(crate) mod histogram;
mod history;
mod insert;
mod lookup;
mod ordering;
mod outcome;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
mod stats_cache;
mod subscription;

/// A wake-up: work may be due on a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// Events became due on this queue.
    Queue(Queue),
    /// Anything may be due (the notification channel reconnected and may have missed some).
    All,
}

/// The outcome of a bulk publish, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishReport {
    /// One entry per input message, in input order.
    pub results: Vec<Published>,
}

impl PublishReport {
    /// Ids of the inserted events, in input order.
    pub fn inserted(&self) -> impl Iterator<Item = EventId> + '_ {
        self.results.iter().filter_map(|p| p.id())
    }

    /// How many inputs were duplicates of an existing idempotency key.
    pub fn duplicates(&self) -> usize {
        self.results.iter().filter(|p| p.is_duplicate()).count()
    }
}

/// How long a store holds an idempotency key unless told otherwise: 24 hours.
pub(crate) const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A storage backend.
///
/// Backend authors implement it (Conveyor ships [`PgStore`](crate::PgStore) and
/// [`SqliteStore`](crate::SqliteStore)); application code only uses it. Every backend keeps
/// what the contract suite in `tests/contract` checks:
/// - a claimed row is held by exactly one worker until completed, released or reaped;
/// - `complete` applies outcomes, inserts emitted events and commits the handler's own
///   writes atomically, and only for rows the worker still holds
///   ([`Error::LeaseLost`](crate::Error::LeaseLost) otherwise, with everything rolled back);
/// - everything is scoped to the store's namespace.
#[async_trait]
pub trait Store: Clone + Send + Sync + 'static {
    /// An open transaction on the backend, handed to handlers for their own writes.
    type Tx: Send;

    /// The namespace everything this store does is scoped to.
    fn namespace(&self) -> &str;

    /// Insert validated events, skipping (and reporting) duplicate idempotency keys.
    async fn insert(&self, events: Vec<NewEvent>) -> Result<PublishReport>;

    /// Claim up to `req.limit` due events of an unpaused queue, setting their lease; each
    /// fairness group's share is chosen, and the batch returned, in the priority rule's
    /// order (see [`Message::priority`]; the aging is `req.priority_aging`).
    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Vec<ClaimedEvent>>;

    /// Open a transaction for a handler's own writes, or the application's: publish in it
    /// with [`publish_in`](Self::publish_in) and finish it with [`commit`](Self::commit).
    async fn begin(&self) -> Result<Self::Tx>;

    /// Insert validated events inside `tx`, as [`insert`](Self::insert) does in a
    /// transaction of its own; they become visible, and wake workers, when `tx` commits
    /// through [`commit`](Self::commit).
    async fn insert_in(&self, tx: &mut Self::Tx, events: Vec<NewEvent>) -> Result<PublishReport>;

    /// Commit `tx` (from [`begin`](Self::begin)), then wake the workers of every queue
    /// published to inside it. Dropping `tx` instead rolls it back.
    async fn commit(&self, tx: Self::Tx) -> Result<()>;

    /// Apply a batch's outcomes and insert its emitted events, atomically with `tx` (the
    /// handler's writes) if given, then commit.
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when any event is no longer held by
    /// `completion.worker`. With `tx` or emitted events nothing is applied then (the
    /// transaction rolls back); otherwise the events still held get their outcome and the
    /// lost ones are left to their new holder.
    async fn complete(&self, tx: Option<Self::Tx>, completion: &Completion) -> Result<()>;

    /// Extend the lease on events still held by `worker`; returns how many were extended.
    async fn renew(&self, worker: &str, ids: &[EventId], lease: Duration) -> Result<u64>;

    /// Return events held by `worker` to the queue, due now. `uncount` takes back the
    /// attempt counted at claim (the handler never started).
    async fn release(&self, worker: &str, ids: &[EventId], uncount: bool) -> Result<u64>;

    /// Return up to `limit` events whose lease expired to the queue (the attempt stays counted);
    /// returns the queues that got work back.
    async fn reap(&self, limit: usize) -> Result<Vec<Queue>>;

    /// Delete up to `limit` delivered and up to `limit` cancelled events older than
    /// `retention` (Oban prunes cancelled jobs with completed ones), and up to `limit`
    /// idempotency keys whose window has passed; returns how many rows went.
    async fn prune(&self, retention: Duration, limit: usize) -> Result<u64>;

    /// Stop every process claiming from `queue` (persisted).
    async fn pause(&self, queue: &Queue) -> Result<()>;

    /// Let `queue` be claimed again and wake its workers.
    async fn resume(&self, queue: &Queue) -> Result<()>;

    /// Counts per queue, ordered by queue. Costs O(queues): counters, plus one probe of the
    /// outbox's due index per queue that changed since this store's last read (a store
    /// keeps the probes of the others, exact while their queue is unchanged).
    async fn stats(&self) -> Result<Vec<QueueStats>>;

    /// Recent activity of `queue`, or of every queue with activity in the last hour or a
    /// live pool serving it: wait and run percentiles over the current and previous
    /// minute, completed and failed events per minute over the last hour, and live worker
    /// pools. Read from what every pool's heartbeat wrote (see
    /// [`record_activity`](Self::record_activity)), so up to one heartbeat interval behind.
    ///
    /// # Errors
    /// Database errors.
    async fn activity(&self, queue: Option<&Queue>) -> Result<Vec<QueueActivity>> {
        let now = Utc::now();
        let workers = self.workers().await?;
        let rows = self
            .activity_rows(activity::window_start(now), queue)
            .await?;
        Ok(activity::summarize(now, rows, &workers, queue))
    }

    /// The worker pools of this namespace that heartbeat within the last hour, live or not
    /// ([`WorkerInfo::live`]), oldest first. A pool's row goes at its clean shutdown.
    ///
    /// # Errors
    /// Database errors.
    async fn workers(&self) -> Result<Vec<WorkerInfo>>;

    /// SPI, for [`activity`](Self::activity): every pool's activity rows of `queue` (or of
    /// every queue) for minutes from `since`.
    async fn activity_rows(
        &self,
        since: DateTime<Utc>,
        queue: Option<&Queue>,
    ) -> Result<Vec<ActivityMinute>>;

    /// SPI, called by the pool's heartbeat task (not for application code): upsert
    /// `worker`'s row (its `last_seen` as given) and its `minutes` (replacing what it wrote
    /// for each before), and prune activity rows and pool rows older than an hour, in one
    /// transaction.
    async fn record_activity(&self, worker: &WorkerInfo, minutes: &[ActivityMinute]) -> Result<()>;

    /// SPI, called by the pool at clean shutdown: delete pool `pool_id`'s row (its activity
    /// rows stay until pruned).
    async fn remove_worker(&self, pool_id: &str) -> Result<()>;

    /// Dead letters, oldest first, optionally of one queue, with ids after `after` (cursor).
    async fn dead_letters(
        &self,
        queue: Option<&Queue>,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>>;

    /// A page of the events `filter` selects, in every state, oldest id first.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming `limit` when the filter asks for more
    /// than [`EventFilter::MAX_LIMIT`]; database errors.
    async fn events(&self, filter: &EventFilter) -> Result<EventPage>;

    /// The event `id` of this namespace in whatever state it is, or `None` when there is no
    /// such event here (never published, pruned, or another namespace's).
    ///
    /// # Errors
    /// Database errors.
    async fn event(&self, id: EventId) -> Result<Option<EventRecord>> {
        Ok(self.events(&lookup::by_id(id)).await?.events.pop())
    }

    /// Record that `handler` (a type name, for operators) consumes `queue`: from its commit,
    /// every publish to the queue's event type and routing key stores a copy for the
    /// queue's subscription, whether or not a process of it runs. Returns the handler
    /// recorded for it before, if any. The pool records its handlers when it starts.
    async fn subscribe(&self, queue: &Queue, handler: &str) -> Result<Option<String>>;

    /// The subscriptions recorded in this namespace.
    async fn subscriptions(&self) -> Result<Vec<Subscription>>;

    /// Remove the subscription of `queue` and delete its copies still pending; returns how
    /// many went, or `None` when no such subscription is recorded. Later publishes store no
    /// copy for it (a pool that still runs it records it again at its next start).
    async fn unsubscribe(&self, queue: &Queue) -> Result<Option<u64>>;

    /// Return dead letters and cancelled events to pending with their attempts reset (and
    /// the cancel reason cleared), as River's `JobRetry` does for discarded and cancelled
    /// jobs; returns how many. The error history is kept.
    async fn replay(&self, ids: &[EventId]) -> Result<u64>;

    /// Cancel events by id, with `reason` (kept as the event's `cancel_reason`). A pending
    /// event (due, scheduled or waiting for its retry) becomes `cancelled` at once: a state
    /// of its own, not a dead letter, never claimed, counted in [`QueueStats::cancelled`] and
    /// pruned after the delivered retention.
    ///
    /// A running event (claimed) is not interrupted: the request is recorded and applied when
    /// its batch completes. Delivered stays delivered (the work committed); any other outcome
    /// (retry, snooze, dead) becomes `cancelled`, and so does a lease the reaper takes back or
    /// a batch released at shutdown. This is River's rule for a running job (cancelled unless
    /// it completes first); the handler's batch and transaction keep their meaning.
    ///
    /// Every id gets an entry in the report, an unknown one [`CancelOutcome::NotFound`]; a
    /// finished one (delivered, dead, cancelled) is left alone. No ids is an empty report.
    async fn cancel(&self, ids: &[EventId], reason: &str) -> Result<CancelReport>;

    /// Cancel, as [`cancel`](Self::cancel), the event published with idempotency key `key`:
    /// the one its key row in `conveyor_idempotency_keys` names (a key whose window passed
    /// still names its event until the pruner removes the row). A key no event holds gives an
    /// empty report; one whose event was pruned since gives [`CancelOutcome::NotFound`].
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an empty key; database errors.
    async fn cancel_by_key(&self, key: &str, reason: &str) -> Result<CancelReport>;

    /// Delete the dead letters of `queue` (or of every queue); returns how many.
    async fn purge_dead(&self, queue: Option<&Queue>) -> Result<u64>;

    /// Record `queue`'s ordering and limit settings (its pool does this when it starts):
    /// events of one ordering key run at most `key_concurrency` at a time, a dead head parks
    /// its key or is skipped, and at most `max_in_flight` events are claimed at once across
    /// every process. Every process follows what was recorded last. A larger key
    /// concurrency applies to a key from its next advance (its next completion or publish).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a zero key concurrency or limit, or a limit
    /// above 10,000; database errors.
    async fn configure(&self, queue: &Queue, settings: &QueueSettings) -> Result<()>;

    /// The ordering keys parked by a dead head (see [`DeadHead::Park`]), of `queue` or of
    /// every queue, oldest first, at most `limit`.
    async fn parked_keys(&self, queue: Option<&Queue>, limit: usize) -> Result<Vec<ParkedKey>>;

    /// Unpark ordering key `key` of `queue`, leaving its dead head in the dead letters, and
    /// let the events behind it run. Returns the dead head's id, or `None` when the key was
    /// not parked.
    async fn skip_key(&self, queue: &Queue, key: &str) -> Result<Option<EventId>>;

    /// Publish `event` as the `tick` of the periodic event `name` (see
    /// [`Periodic`](crate::Periodic)), once across every process: in one transaction,
    /// record `tick` as the schedule's last tick only if the recorded one is earlier (or there
    /// is none), and insert `event` only when it was recorded. Returns what the insert did, or
    /// `None` when this tick or a later one was already recorded (another process published
    /// it). Independent of idempotency keys: the event's own key, if it has one, still
    /// applies to its insert.
    async fn publish_tick(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<Option<Published>>;

    /// The last tick recorded for the periodic event `name`, if it ever published one.
    async fn last_tick(&self, name: &str) -> Result<Option<DateTime<Utc>>>;

    /// Fold the queue counters' pending changes into their totals, if the backend defers
    /// them (Postgres appends one delta row per queue and statement; see
    /// `migrations/postgres/20261205000001_counters.sql`); returns how many changes it
    /// folded. The pool's maintenance task calls it every interval; a stats read starts it
    /// in the background when many changes wait. The default does nothing (SQLite counts in place).
    async fn compact_counters(&self) -> Result<u64> {
        Ok(0)
    }

    /// Reclaim the space of deleted and updated rows if the backend needs a hand with it;
    /// returns whether it did anything. The pool's maintenance task calls it every 10 s.
    /// The default does nothing.
    async fn vacuum(&self) -> Result<bool> {
        Ok(false)
    }

    /// The most connections the store can hold open at once, if it has such a limit. The pool
    /// warns at start when its workers could exhaust it.
    fn connection_limit(&self) -> Option<u32> {
        None
    }

    /// A stream of wake-ups from publishes in any process. It ends only when the store is dropped.
    async fn wake_stream(&self) -> Result<BoxStream<'static, Wake>>;

    /// Publish one event in its own transaction.
    ///
    /// # Errors
    /// Validation and serialization errors of the payload, and database errors.
    async fn publish<E: Event>(&self, msg: impl Into<Message<E>> + Send) -> Result<Published> {
        let report = self.insert(vec![msg.into().into_new_event()?]).await?;
        Ok(report.results[0])
    }

    /// Publish one event inside `tx` (from [`begin`](Self::begin)), with the application's
    /// own writes in it: it becomes visible, and wakes workers, only when `tx` commits
    /// through [`commit`](Self::commit). Application code written once for any store:
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
    /// # struct OrderPlaced { #[garde(skip)] order_id: String }
    /// # impl conveyor::Event for OrderPlaced { const NAME: &'static str = "order_placed"; }
    /// use conveyor::Store;
    ///
    /// async fn place<S: Store>(store: &S, order_id: String) -> conveyor::Result<()> {
    ///     let mut tx = store.begin().await?;
    ///     store.publish_in(&mut tx, OrderPlaced { order_id }).await?;
    ///     store.commit(tx).await
    /// }
    /// ```
    ///
    /// # Errors
    /// Validation and serialization errors of the payload, and database errors.
    async fn publish_in<E: Event>(
        &self,
        tx: &mut Self::Tx,
        msg: impl Into<Message<E>> + Send,
    ) -> Result<Published> {
        let report = self
            .insert_in(tx, vec![msg.into().into_new_event()?])
            .await?;
        Ok(report.results[0])
    }

    /// Publish many events inside `tx` in one round trip; one invalid payload rejects them
    /// all.
    ///
    /// # Errors
    /// The first validation or serialization error, and database errors.
    async fn publish_batch_in<E: Event, I>(
        &self,
        tx: &mut Self::Tx,
        msgs: I,
    ) -> Result<PublishReport>
    where
        I: IntoIterator + Send,
        I::Item: Into<Message<E>>,
        I::IntoIter: Send,
    {
        self.insert_in(tx, new_events(msgs)?).await
    }

    /// Publish many events in one round trip; one invalid payload rejects the whole batch.
    ///
    /// # Errors
    /// The first validation or serialization error, and database errors.
    async fn publish_batch<E: Event, I>(&self, msgs: I) -> Result<PublishReport>
    where
        I: IntoIterator + Send,
        I::Item: Into<Message<E>>,
        I::IntoIter: Send,
    {
        self.insert(new_events(msgs)?).await
    }
}

/// Validate and serialize `msgs`; the first invalid one fails them all. The current trace
/// context is read once, for every message that states none.
pub(crate) fn new_events<E: Event, I>(msgs: I) -> Result<Vec<NewEvent>>
where
    I: IntoIterator,
    I::Item: Into<Message<E>>,
{
    let mut current: Option<Option<String>> = None;
    msgs.into_iter()
        .map(|m| {
            m.into()
                .into_new_event_traced(|| current.get_or_insert_with(crate::trace::current).clone())
        })
        .collect()
}

/// A queue from its stored columns (`""` is no routing key; see `Queue::routing_key_str`
/// for how a subscription is stored), on every backend.
pub(crate) fn queue(event_type: String, routing_key: String) -> Queue {
    Queue::from_stored(event_type, routing_key)
}

/// The namespace a store uses unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Refuse an empty namespace or one with control characters.
pub(crate) fn check_namespace(namespace: &str) -> Result<()> {
    if namespace.is_empty() || namespace.chars().any(char::is_control) {
        return Err(crate::Error::Config(format!(
            "namespace must be non-empty printable text, got {namespace:?}"
        )));
    }
    Ok(())
}
