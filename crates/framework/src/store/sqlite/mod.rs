//! The SQLite backend: the embedded store, so Conveyor runs with no database server.
//!
//! Same contract as [`PgStore`](crate::PgStore), in SQLite's terms:
//! - one writer at a time: every write runs in a `BEGIN IMMEDIATE` transaction behind the
//!   process-wide write lock of its file (see `hub`), so a claim is exclusive without
//!   `SKIP LOCKED`;
//! - WAL journal, so reads (stats, dead letters, the handlers' queries) never wait for writers;
//! - wake-ups in process, sent after the commit that made the work due.
//!
//! Every statement lives in `sql/*.sql` beside this module. Ids and instants are bound as
//! JSON arrays (`json_each`) where Postgres takes arrays.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sqlx::sqlite::SqlitePool;

use crate::error::{Error, Result};
use crate::event::{EventId, NewEvent, Published, Queue};
use crate::store::stats_cache::StatsCache;
use crate::store::{
    check_key, check_namespace, queue, ActivityMinute, CancelReport, ClaimRequest, ClaimedEvent,
    Completion, DeadLetter, EventFilter, EventPage, ParkedKey, PublishReport, QueueSettings,
    QueueStats, Store, Subscription, Wake, WorkerInfo,
};

mod activity;
mod admin;
mod cancel;
mod claim;
mod complete;
mod counts;
mod hub;
mod insert;
mod lookup;
mod open;
mod ordering;
mod periodic;
mod subscriptions;
mod tx;

use hub::Hub;
pub use tx::SqliteTx;

/// The SQLite outbox migrations, embedded. [`SqliteStore::open`] applies them itself,
/// recording them in Conveyor's own history table (see [`crate::migrations`]), apart from your
/// application's `_sqlx_migrations`.
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The SQLite [`Store`], scoped to one namespace: the embedded default.
///
/// Cheap to clone: clones share the connection pool. Every store of this process on the
/// same file shares one write lock and one wake-up channel, so pools started on separate
/// stores still wake each other; a *separate process* on the same file is not woken and
/// picks work up at its poll interval.
///
/// # Example
/// ```no_run
/// # async fn run() -> conveyor::Result<()> {
/// let store = conveyor::SqliteStore::open("conveyor.db").await?;
/// let tenant = store.with_namespace("tenant-a")?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    namespace: Arc<str>,
    hub: Arc<Hub>,
    /// How long an idempotency key is held.
    key_window: Duration,
    /// The stats reads' probes (see `store::stats_cache`), one per namespace.
    stats: Arc<StatsCache>,
}

impl SqliteStore {
    /// Hold idempotency keys for `window` instead of the default 24 hours (see
    /// [`Message::idempotency_key`](crate::Message::idempotency_key) for the guarantee). A
    /// key stays refused for this long after its first publish, independent of how long
    /// delivered events are kept.
    pub fn with_idempotency_window(mut self, window: Duration) -> Self {
        self.key_window = window;
        self
    }

    /// The same database, scoped to `namespace`: nothing of another namespace is claimed,
    /// read or counted through the returned store.
    ///
    /// # Errors
    /// [`Error::Config`] when the namespace is empty or contains control characters.
    pub fn with_namespace(&self, namespace: &str) -> Result<Self> {
        check_namespace(namespace)?;
        Ok(Self {
            pool: self.pool.clone(),
            namespace: Arc::from(namespace),
            hub: self.hub.clone(),
            key_window: self.key_window,
            stats: Arc::default(),
        })
    }

    /// The underlying connection pool, for reads. Write through [`Store::begin`] instead, so
    /// the write waits its turn behind the store's own writers rather than in SQLite's busy
    /// handler.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction under the write lock.
    async fn write(&self) -> Result<SqliteTx> {
        let guard = self.hub.lock().await?;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(SqliteTx {
            tx,
            wakes: Vec::new(),
            hub: self.hub.clone(),
            namespace: self.namespace.clone(),
            _write: guard,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    type Tx = SqliteTx;

    fn namespace(&self) -> &str {
        &self.namespace
    }

    async fn insert(&self, events: Vec<NewEvent>) -> Result<PublishReport> {
        let mut tx = self.write().await?;
        let report = self.insert_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Vec<ClaimedEvent>> {
        let mut tx = self.write().await?;
        let claimed = claim::claim(&mut tx, &self.namespace, &req, now_ms()).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn begin(&self) -> Result<SqliteTx> {
        self.write().await
    }

    async fn insert_in(&self, tx: &mut SqliteTx, events: Vec<NewEvent>) -> Result<PublishReport> {
        let (report, woken) = insert::insert(
            &mut tx.tx,
            &self.namespace,
            self.key_window,
            &events,
            now_ms(),
        )
        .await?;
        // woken at commit
        tx.wakes.extend(woken);
        Ok(report)
    }

    async fn commit(&self, tx: SqliteTx) -> Result<()> {
        tx.commit().await
    }

    async fn complete(&self, tx: Option<SqliteTx>, completion: &Completion) -> Result<()> {
        let partial_ok = tx.is_none() && completion.emitted.is_empty();
        let mut tx = match tx {
            Some(tx) => tx,
            None => self.write().await?,
        };
        let now = now_ms();
        let held = complete::apply(&mut tx, &self.namespace, completion, now).await?;
        let expected = completion.outcomes.len();
        if held != expected as u64 && !partial_ok {
            // with handler writes or emitted events nothing applies: `tx` rolls back
            return Err(lease_lost(completion, expected, held));
        }
        if !completion.emitted.is_empty() {
            let (_, woken) = insert::insert(
                &mut tx.tx,
                &self.namespace,
                self.key_window,
                &completion.emitted,
                now,
            )
            .await?;
            tx.wakes.extend(woken);
        }
        tx.commit().await?;
        if held != expected as u64 {
            return Err(lease_lost(completion, expected, held));
        }
        Ok(())
    }

    async fn renew(&self, worker: &str, ids: &[EventId], lease: Duration) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = complete::renew(&mut tx, &self.namespace, worker, ids, lease, now_ms()).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn release(&self, worker: &str, ids: &[EventId], uncount: bool) -> Result<u64> {
        let mut tx = self.write().await?;
        let (n, woken) =
            complete::release(&mut tx, &self.namespace, worker, ids, uncount, now_ms()).await?;
        tx.wakes.extend(woken);
        tx.commit().await?;
        Ok(n)
    }

    async fn reap(&self, limit: usize) -> Result<Vec<Queue>> {
        let mut tx = self.write().await?;
        let queues = admin::reap(&mut tx, &self.namespace, limit, now_ms()).await?;
        tx.wakes.extend(queues.iter().cloned());
        tx.commit().await?;
        Ok(queues)
    }

    async fn prune(&self, retention: Duration, limit: usize) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = admin::prune(&mut tx, &self.namespace, retention, limit, now_ms()).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn pause(&self, queue: &Queue) -> Result<()> {
        let mut tx = self.write().await?;
        admin::pause(&mut tx, &self.namespace, queue, now_ms()).await?;
        tx.commit().await
    }

    async fn resume(&self, queue: &Queue) -> Result<()> {
        let mut tx = self.write().await?;
        admin::resume(&mut tx, &self.namespace, queue).await?;
        tx.wakes.push(queue.clone());
        tx.commit().await
    }

    async fn stats(&self) -> Result<Vec<QueueStats>> {
        admin::stats(&self.pool, &self.namespace, now_ms(), &self.stats).await
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
        let mut tx = self.write().await?;
        activity::record(&mut tx, &self.namespace, worker, minutes).await?;
        tx.commit().await
    }

    async fn remove_worker(&self, pool_id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        activity::remove(&mut tx, &self.namespace, pool_id).await?;
        tx.commit().await
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
        let mut tx = self.write().await?;
        let before =
            subscriptions::subscribe(&mut tx, &self.namespace, queue, handler, now_ms()).await?;
        tx.commit().await?;
        Ok(before)
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>> {
        subscriptions::subscriptions(&self.pool, &self.namespace).await
    }

    async fn unsubscribe(&self, queue: &Queue) -> Result<Option<u64>> {
        let mut tx = self.write().await?;
        let purged = subscriptions::unsubscribe(&mut tx, &self.namespace, queue).await?;
        tx.commit().await?;
        Ok(purged)
    }

    async fn replay(&self, ids: &[EventId]) -> Result<u64> {
        let mut tx = self.write().await?;
        let (n, woken) = admin::replay(&mut tx, &self.namespace, ids, now_ms()).await?;
        tx.wakes.extend(woken);
        tx.commit().await?;
        Ok(n)
    }

    async fn cancel(&self, ids: &[EventId], reason: &str) -> Result<CancelReport> {
        let mut tx = self.write().await?;
        let report = cancel::cancel(&mut tx, &self.namespace, ids, reason, now_ms()).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn cancel_by_key(&self, key: &str, reason: &str) -> Result<CancelReport> {
        check_key(key)?;
        let mut tx = self.write().await?;
        let report = cancel::cancel_by_key(&mut tx, &self.namespace, key, reason, now_ms()).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn purge_dead(&self, queue: Option<&Queue>) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = admin::purge_dead(&mut tx, &self.namespace, queue).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn configure(&self, queue: &Queue, settings: &QueueSettings) -> Result<()> {
        let mut tx = self.write().await?;
        ordering::configure(&mut tx, &self.namespace, queue, settings, now_ms()).await?;
        tx.commit().await
    }

    async fn parked_keys(&self, queue: Option<&Queue>, limit: usize) -> Result<Vec<ParkedKey>> {
        ordering::parked_keys(&self.pool, &self.namespace, queue, limit).await
    }

    async fn skip_key(&self, queue: &Queue, key: &str) -> Result<Option<EventId>> {
        let mut tx = self.write().await?;
        let head = ordering::skip_key(&mut tx, &self.namespace, queue, key).await?;
        tx.wakes.push(queue.clone());
        tx.commit().await?;
        Ok(head)
    }

    async fn publish_tick(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<Option<Published>> {
        let tx = self.write().await?;
        periodic::publish_tick(
            tx,
            &self.namespace,
            self.key_window,
            name,
            tick,
            event,
            now_ms(),
        )
        .await
    }

    async fn last_tick(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        periodic::last_tick(&self.pool, &self.namespace, name).await
    }

    fn connection_limit(&self) -> Option<u32> {
        Some(self.pool.options().get_max_connections())
    }

    async fn wake_stream(&self) -> Result<BoxStream<'static, Wake>> {
        Ok(self.hub.stream(self.namespace.clone()))
    }
}

fn lease_lost(completion: &Completion, expected: usize, held: u64) -> Error {
    Error::LeaseLost {
        worker: completion.worker.clone(),
        expected,
        held: held as usize,
    }
}

/// The current instant in milliseconds since the epoch: the store's clock.
fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// An instant from its stored milliseconds.
fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Milliseconds of a duration, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Ids as the JSON array the SQL reads with `json_each`.
fn id_array(ids: &[EventId]) -> String {
    serde_json::to_string(&ids.iter().map(|id| id.0).collect::<Vec<_>>()).unwrap_or_default()
}
