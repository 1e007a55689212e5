//! The PostgreSQL backend: the production store and the reference for every semantic.
//!
//! Every statement lives in `sql/*.sql` beside this module and runs as a prepared statement
//! (runtime `query_as`, so the framework builds without a database).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sqlx::postgres::PgPool;
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::error::Result;
use crate::event::{Event, EventId, Message, NewEvent, Published, Queue};
use crate::store::stats_cache::StatsCache;
use crate::store::{
    check_key, check_namespace, queue, ActivityMinute, CancelReport, ClaimRequest, ClaimedEvent,
    Completion, DeadLetter, EventFilter, EventPage, ParkedKey, PublishReport, QueueSettings,
    QueueStats, Store, Subscription, Wake, WorkerInfo, DEFAULT_IDEMPOTENCY_WINDOW,
    DEFAULT_NAMESPACE,
};

mod activity;
mod admin;
mod cancel;
mod claim;
mod complete;
mod insert;
mod listen;
mod lookup;
mod ordering;
mod periodic;
mod pool_options;
mod reap;
mod subscriptions;

/// The PostgreSQL [`Store`], scoped to one namespace.
///
/// Cheap to clone: clones share the connection pool.
///
/// # Example
/// ```no_run
/// # async fn run() -> conveyor::Result<()> {
/// let store = conveyor::PgStore::connect("postgres://localhost/app").await?;
/// store.migrate().await?;
/// let tenant = store.with_namespace("tenant-a")?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    namespace: Arc<str>,
    /// How long an idempotency key is held.
    key_window: Duration,
    /// The stats reads' probes (see `store::stats_cache`), one per namespace.
    stats: Arc<StatsCache>,
}

impl PgStore {
    /// A store over an existing pool, in the [`DEFAULT_NAMESPACE`].
    ///
    /// The pool must have a connection for each batch in flight (each worker's claim,
    /// completion and handler transaction), one for the wake-up listener and a few for
    /// heartbeats and maintenance: `total concurrency + 4` is a safe minimum.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            namespace: Arc::from(DEFAULT_NAMESPACE),
            key_window: DEFAULT_IDEMPOTENCY_WINDOW,
            stats: Arc::default(),
        }
    }

    /// Hold idempotency keys for `window` instead of the default 24 hours (see
    /// [`Message::idempotency_key`] for the guarantee). A key stays refused for this long
    /// after its first publish, independent of how long delivered events are kept.
    pub fn with_idempotency_window(mut self, window: Duration) -> Self {
        self.key_window = window;
        self
    }

    /// Connect a new pool of 20 connections to `url`.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = Self::pool_options()
            .max_connections(20)
            .connect(url)
            .await?;
        Ok(Self::new(pool))
    }

    /// Apply Conveyor's migrations that this database does not have yet, recording them in
    /// Conveyor's own history table (`conveyor_migrations`, see [`crate::migrations`]), apart
    /// from your application's `_sqlx_migrations`: run it before or after your own
    /// `sqlx::migrate!()`, in either order. Safe to call on every start and from several
    /// processes at once.
    ///
    /// # Errors
    /// As [`migrations::run_postgres`](crate::migrations::run_postgres).
    pub async fn migrate(&self) -> Result<()> {
        crate::migrations::run_postgres(&self.pool, &crate::MIGRATOR).await
    }

    /// The same database, scoped to `namespace`: nothing of another namespace is claimed,
    /// read or counted through the returned store.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the namespace is empty or contains control characters.
    pub fn with_namespace(&self, namespace: &str) -> Result<Self> {
        check_namespace(namespace)?;
        Ok(Self {
            pool: self.pool.clone(),
            namespace: Arc::from(namespace),
            key_window: self.key_window,
            stats: Arc::default(),
        })
    }

    /// The underlying connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Publish one event inside the caller's transaction (or on any executor): it becomes
    /// visible, and wakes workers, only when that transaction commits.
    ///
    /// # Example
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
    /// # struct OrderPlaced { #[garde(skip)] order_id: String }
    /// # impl conveyor::Event for OrderPlaced { const NAME: &'static str = "order_placed"; }
    /// # async fn run(store: conveyor::PgStore) -> anyhow::Result<()> {
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("insert into orders (id) values ('o-1')").execute(&mut *tx).await?;
    /// store.publish_in(&mut *tx, OrderPlaced { order_id: "o-1".into() }).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Validation and serialization errors of the payload, and database errors.
    pub async fn publish_in<'c, E: Event>(
        &self,
        executor: impl PgExecutor<'c>,
        msg: impl Into<Message<E>>,
    ) -> Result<Published> {
        let event = msg.into().into_new_event()?;
        let report = insert::insert(executor, &self.namespace, self.key_window, &[event]).await?;
        Ok(report.results[0])
    }

    /// Publish many events inside the caller's transaction in one round trip.
    ///
    /// # Errors
    /// The first validation or serialization error (nothing is inserted then), and database errors.
    pub async fn publish_batch_in<'c, E: Event, I>(
        &self,
        executor: impl PgExecutor<'c>,
        msgs: I,
    ) -> Result<PublishReport>
    where
        I: IntoIterator,
        I::Item: Into<Message<E>>,
    {
        let events = crate::store::new_events(msgs)?;
        insert::insert(executor, &self.namespace, self.key_window, &events).await
    }

    /// [`publish_batch_in`](Self::publish_batch_in) without the wake-up at commit: send the
    /// returned [`Wakeup`] with [`wake`](Self::wake) once the transaction committed.
    ///
    /// For hot publishers: a transaction that sends `NOTIFY` holds Postgres' single
    /// notification lock from the start of its commit to the end of its WAL flush, so
    /// concurrent notifying transactions commit one at a time. The wake-up sent afterwards,
    /// in a statement that writes nothing, holds that lock for microseconds instead.
    ///
    /// # Example
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
    /// # struct Ping { #[garde(skip)] n: u32 }
    /// # impl conveyor::Event for Ping { const NAME: &'static str = "ping"; }
    /// # async fn run(store: conveyor::PgStore) -> anyhow::Result<()> {
    /// let mut tx = store.pool().begin().await?;
    /// let (_, wakeup) = store.publish_batch_in_deferred(&mut *tx, vec![Ping { n: 1 }]).await?;
    /// tx.commit().await?;
    /// store.wake(wakeup).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`publish_batch_in`](Self::publish_batch_in).
    pub async fn publish_batch_in_deferred<'c, E: Event, I>(
        &self,
        executor: impl PgExecutor<'c>,
        msgs: I,
    ) -> Result<(PublishReport, Wakeup)>
    where
        I: IntoIterator,
        I::Item: Into<Message<E>>,
    {
        let events = crate::store::new_events(msgs)?;
        let (report, queues) =
            insert::insert_with(executor, &self.namespace, self.key_window, &events, false).await?;
        Ok((report, Wakeup { queues }))
    }

    /// Wake the workers of a [`Wakeup`]'s queues in every process (one `NOTIFY` per queue,
    /// in one statement of its own). Nothing to send is a no-op.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the notification cannot be sent; the events are published
    /// regardless and are claimed at the workers' next poll.
    pub async fn wake(&self, wakeup: Wakeup) -> Result<()> {
        listen::notify(&self.pool, &self.namespace, &wakeup.queues).await
    }
}

/// Queues to wake once a transaction that published to them committed: see
/// [`PgStore::publish_batch_in_deferred`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "send it with PgStore::wake after the commit, or idle workers wait for their poll"]
pub struct Wakeup {
    queues: Vec<Queue>,
}

impl Wakeup {
    /// Whether there is nothing to wake.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

#[async_trait]
impl Store for PgStore {
    type Tx = Transaction<'static, Postgres>;

    fn namespace(&self) -> &str {
        &self.namespace
    }

    async fn insert(&self, events: Vec<NewEvent>) -> Result<PublishReport> {
        insert::insert(&self.pool, &self.namespace, self.key_window, &events).await
    }

    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Vec<ClaimedEvent>> {
        claim::claim(&self.pool, &self.namespace, req).await
    }

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.pool.begin().await?)
    }

    async fn insert_in(&self, tx: &mut Self::Tx, events: Vec<NewEvent>) -> Result<PublishReport> {
        // NOTIFY inside the transaction: delivered at its commit
        insert::insert(&mut **tx, &self.namespace, self.key_window, &events).await
    }

    async fn commit(&self, tx: Self::Tx) -> Result<()> {
        Ok(tx.commit().await?)
    }

    async fn complete(&self, tx: Option<Self::Tx>, completion: &Completion) -> Result<()> {
        complete::complete(&self.pool, &self.namespace, self.key_window, tx, completion).await
    }

    async fn renew(&self, worker: &str, ids: &[EventId], lease: Duration) -> Result<u64> {
        complete::renew(&self.pool, &self.namespace, worker, ids, lease).await
    }

    async fn release(&self, worker: &str, ids: &[EventId], uncount: bool) -> Result<u64> {
        complete::release(&self.pool, &self.namespace, worker, ids, uncount).await
    }

    async fn reap(&self, limit: usize) -> Result<Vec<Queue>> {
        reap::reap(&self.pool, &self.namespace, limit).await
    }

    async fn prune(&self, retention: Duration, limit: usize) -> Result<u64> {
        reap::prune(&self.pool, &self.namespace, retention, limit).await
    }

    async fn pause(&self, queue: &Queue) -> Result<()> {
        admin::set_paused(&self.pool, &self.namespace, queue, true).await
    }

    async fn resume(&self, queue: &Queue) -> Result<()> {
        admin::set_paused(&self.pool, &self.namespace, queue, false).await
    }

    async fn stats(&self) -> Result<Vec<QueueStats>> {
        admin::stats(&self.pool, &self.namespace, &self.stats).await
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        activity::workers(&self.pool, &self.namespace).await
    }

    async fn activity_rows(
        &self,
        since: DateTime<Utc>,
        queue: Option<&Queue>,
    ) -> Result<Vec<ActivityMinute>> {
        activity::rows(&self.pool, &self.namespace, since, queue).await
    }

    async fn record_activity(&self, worker: &WorkerInfo, minutes: &[ActivityMinute]) -> Result<()> {
        activity::record(&self.pool, &self.namespace, worker, minutes).await
    }

    async fn remove_worker(&self, pool_id: &str) -> Result<()> {
        activity::remove(&self.pool, &self.namespace, pool_id).await
    }

    async fn compact_counters(&self) -> Result<u64> {
        admin::compact_counters(&self.pool).await
    }

    async fn dead_letters(
        &self,
        queue: Option<&Queue>,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        admin::dead_letters(&self.pool, &self.namespace, queue, after, limit).await
    }

    async fn events(&self, filter: &EventFilter) -> Result<EventPage> {
        lookup::events(&self.pool, &self.namespace, filter).await
    }

    async fn subscribe(&self, queue: &Queue, handler: &str) -> Result<Option<String>> {
        subscriptions::subscribe(&self.pool, &self.namespace, queue, handler).await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>> {
        subscriptions::subscriptions(&self.pool, &self.namespace).await
    }

    async fn unsubscribe(&self, queue: &Queue) -> Result<Option<u64>> {
        subscriptions::unsubscribe(&self.pool, &self.namespace, queue).await
    }

    async fn replay(&self, ids: &[EventId]) -> Result<u64> {
        admin::replay(&self.pool, &self.namespace, ids).await
    }

    async fn cancel(&self, ids: &[EventId], reason: &str) -> Result<CancelReport> {
        cancel::cancel(&self.pool, &self.namespace, ids, None, reason).await
    }

    async fn cancel_by_key(&self, key: &str, reason: &str) -> Result<CancelReport> {
        check_key(key)?;
        cancel::cancel(&self.pool, &self.namespace, &[], Some(key), reason).await
    }

    async fn purge_dead(&self, queue: Option<&Queue>) -> Result<u64> {
        admin::purge_dead(&self.pool, &self.namespace, queue).await
    }

    async fn configure(&self, queue: &Queue, settings: &QueueSettings) -> Result<()> {
        ordering::configure(&self.pool, &self.namespace, queue, settings).await
    }

    async fn parked_keys(&self, queue: Option<&Queue>, limit: usize) -> Result<Vec<ParkedKey>> {
        ordering::parked_keys(&self.pool, &self.namespace, queue, limit).await
    }

    async fn skip_key(&self, queue: &Queue, key: &str) -> Result<Option<EventId>> {
        ordering::skip_key(&self.pool, &self.namespace, queue, key).await
    }

    async fn publish_tick(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<Option<Published>> {
        periodic::publish_tick(
            &self.pool,
            &self.namespace,
            self.key_window,
            name,
            tick,
            event,
        )
        .await
    }

    async fn last_tick(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        periodic::last_tick(&self.pool, &self.namespace, name).await
    }

    async fn vacuum(&self) -> Result<bool> {
        reap::vacuum(&self.pool).await
    }

    fn connection_limit(&self) -> Option<u32> {
        Some(self.pool.options().get_max_connections())
    }

    async fn wake_stream(&self) -> Result<BoxStream<'static, Wake>> {
        listen::wake_stream(&self.pool, self.namespace.clone()).await
    }
}

/// Milliseconds as the `float8` the SQL expects.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Ids as the `bigint[]` the SQL expects.
fn raw_ids(ids: &[EventId]) -> Vec<i64> {
    ids.iter().map(|id| id.0).collect()
}
