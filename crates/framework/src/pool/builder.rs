//! [`PoolBuilder`]: registering handlers in code, with conflicts caught at `build()`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{HookSet, PoolConfig, Registration, WorkerPool};
use crate::error::{Error, Result};
use crate::event::{check_name, Event, Queue};
use crate::handler::EventHandler;
use crate::hooks::{AsyncHook, HookEvent};
use crate::lease::Maintenance;
use crate::middleware::{Chain, Middleware};
use crate::periodic::Periodic;
use crate::runner::Typed;
use crate::store::{DeadHead, QueueSettings, Store};
use crate::worker::Spec;

/// Per-registration settings. The handler's constants are the defaults; a registration can
/// override them, e.g. from configuration or in a benchmark or test.
#[derive(Debug, Clone)]
pub struct HandlerOptions {
    concurrency: usize,
    batch_size: Option<usize>,
    poll_interval: Option<Duration>,
    claim_timeout: Option<Duration>,
    timeout: Option<Duration>,
    subscription: Option<String>,
    priority_aging: Option<Duration>,
    key_concurrency: Option<u32>,
    on_dead_head: Option<DeadHead>,
    max_in_flight: Option<Option<u32>>,
    middleware: Chain,
}

impl Default for HandlerOptions {
    fn default() -> Self {
        Self {
            concurrency: 1,
            batch_size: None,
            poll_interval: None,
            claim_timeout: None,
            timeout: None,
            subscription: None,
            priority_aging: None,
            key_concurrency: None,
            on_dead_head: None,
            max_in_flight: None,
            middleware: Chain::default(),
        }
    }
}

impl HandlerOptions {
    /// How many batches of this handler run at once (each on its own worker). Defaults to 1.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// The most events per batch, instead of the handler's `BATCH_SIZE`.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// How often an idle worker polls when no wake-up arrives, instead of `POLL_INTERVAL`.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// How long a claimed batch's lease lasts, instead of `CLAIM_TIMEOUT`: a crashed worker's
    /// events come back after it.
    pub fn claim_timeout(mut self, timeout: Duration) -> Self {
        self.claim_timeout = Some(timeout);
        self
    }

    /// The most one `handle` call may run, instead of `TIMEOUT` (see
    /// [`EventHandler::TIMEOUT`] for what happens past it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The subscription the handler consumes its event type under, instead of
    /// `SUBSCRIPTION` (see [`EventHandler::SUBSCRIPTION`]): register one handler type
    /// twice under two names to get each event twice.
    pub fn subscription(mut self, name: impl Into<String>) -> Self {
        self.subscription = Some(name.into());
        self
    }

    /// How long an event may be due before it is claimed ahead of every priority, instead
    /// of `PRIORITY_AGING` (see [`EventHandler::PRIORITY_AGING`]).
    pub fn priority_aging(mut self, aging: Duration) -> Self {
        self.priority_aging = Some(aging);
        self
    }

    /// How many events of one ordering key may run at once, instead of `KEY_CONCURRENCY`
    /// (see [`Message::ordering_key`](crate::Message::ordering_key)). At least 1.
    pub fn key_concurrency(mut self, n: u32) -> Self {
        self.key_concurrency = Some(n);
        self
    }

    /// What a dead head does to its ordering key, instead of `ON_DEAD_HEAD`.
    pub fn on_dead_head(mut self, policy: DeadHead) -> Self {
        self.on_dead_head = Some(policy);
        self
    }

    /// The most events of the queue in flight at once across every process, instead of
    /// `MAX_IN_FLIGHT` (`None`: no limit). At least 1, at most 10,000.
    pub fn max_in_flight(mut self, limit: Option<u32>) -> Self {
        self.max_in_flight = Some(limit);
        self
    }

    /// Run this handler's `handle` calls inside `middleware`, after (inside) the pool's
    /// ([`PoolBuilder::middleware`]); several run in the order added, the first outermost.
    pub fn middleware(mut self, middleware: impl Middleware) -> Self {
        self.middleware.0.push(Arc::new(middleware));
        self
    }
}

/// An async hook's queue capacity unless stated ([`PoolBuilder::async_hook_with`]).
const ASYNC_HOOK_CAPACITY: usize = 1024;
/// An async hook call's timeout unless stated ([`PoolBuilder::async_hook_with`]).
const ASYNC_HOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds a [`WorkerPool`]. Registration never panics: a conflict or a bad setting is
/// reported by [`build`](Self::build).
///
/// # Example
/// ```no_run
/// # use conveyor::{Batch, Context, EventHandler, HandlerError, HandlerOptions, WorkerPool};
/// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
/// # struct Ping { #[garde(skip)] n: u32 }
/// # impl conveyor::Event for Ping { const NAME: &'static str = "ping"; }
/// # struct Pong;
/// # #[async_trait::async_trait]
/// # impl EventHandler for Pong {
/// #     type Event = Ping;
/// #     async fn handle(&self, _: Batch<Ping>, _: &mut Context<'_>) -> Result<(), HandlerError> { Ok(()) }
/// # }
/// # async fn run(store: conveyor::PgStore) -> conveyor::Result<()> {
/// let pool = WorkerPool::builder(store)
///     .register_with(Pong, HandlerOptions::default().concurrency(4))
///     .build()?;
/// # Ok(()) }
/// ```
pub struct PoolBuilder<S: Store> {
    store: S,
    handlers: Vec<Registration<S>>,
    periodic: Vec<Periodic>,
    errors: Vec<Error>,
    config: PoolConfig,
    hooks: HookSet,
    middleware: Chain,
}

impl<S: Store> std::fmt::Debug for PoolBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("handlers", &self.handlers.len())
            .field("periodic", &self.periodic)
            .field("errors", &self.errors)
            .field("config", &self.config)
            .field("hooks", &self.hooks)
            .field("middleware", &self.middleware)
            .finish()
    }
}

impl<S: Store> PoolBuilder<S> {
    pub(super) fn new(store: S) -> Self {
        Self {
            store,
            handlers: Vec::new(),
            periodic: Vec::new(),
            errors: Vec::new(),
            config: PoolConfig {
                shutdown_timeout: Duration::from_secs(30),
                maintenance: Maintenance {
                    interval: Duration::from_secs(1),
                    retention: Duration::from_secs(10 * 60),
                },
                heartbeat: Duration::from_secs(5),
            },
            hooks: HookSet::default(),
            middleware: Chain::default(),
        }
    }

    /// Register `handler` with default [`HandlerOptions`].
    pub fn register<H: EventHandler<S>>(self, handler: H) -> Self {
        self.register_with(handler, HandlerOptions::default())
    }

    /// Register `handler` with `options`.
    pub fn register_with<H: EventHandler<S>>(
        mut self,
        handler: H,
        options: HandlerOptions,
    ) -> Self {
        let name = std::any::type_name::<H>();
        let subscription = options.subscription.as_deref().unwrap_or(H::SUBSCRIPTION);
        let spec = Spec {
            name,
            queue: Queue::new(<H::Event as Event>::NAME, H::ROUTING_KEY)
                .in_subscription(subscription),
            batch_size: options.batch_size.unwrap_or(H::BATCH_SIZE),
            poll_interval: options.poll_interval.unwrap_or(H::POLL_INTERVAL),
            claim_timeout: options.claim_timeout.unwrap_or(H::CLAIM_TIMEOUT),
            priority_aging: options.priority_aging.unwrap_or(H::PRIORITY_AGING),
            settings: QueueSettings::new(
                options.key_concurrency.unwrap_or(H::KEY_CONCURRENCY),
                options.on_dead_head.unwrap_or(H::ON_DEAD_HEAD),
                options.max_in_flight.unwrap_or(H::MAX_IN_FLIGHT),
            ),
        };
        if let Err(e) = check(&spec, &options) {
            self.errors.push(e);
        }
        self.handlers.push(Registration {
            spec: Arc::new(spec),
            runner: Arc::new(Typed {
                handler,
                timeout: options.timeout.unwrap_or(H::TIMEOUT),
            }),
            concurrency: options.concurrency,
            middleware: options.middleware,
        });
        self
    }

    /// Call `hook` with every [`HookEvent`] of the pool (see [`hooks`](crate::hooks)), on
    /// the worker's task: keep it cheap (a counter, a `try_send`), or use
    /// [`async_hook`](Self::async_hook). A panic is caught, logged and counted in
    /// [`WorkerPool::hook_failures`].
    pub fn hook(mut self, hook: impl Fn(&HookEvent) + Send + Sync + 'static) -> Self {
        self.hooks.sync.push(Arc::new(hook));
        self
    }

    /// Run `hook` with every [`HookEvent`] on a task of its own, off the workers' path: a
    /// queue of 1,024 records (full: the record is dropped and counted), each call cut off
    /// after 5 s (counted). A panic is caught, logged and counted.
    pub fn async_hook<F, Fut>(self, hook: F) -> Self
    where
        F: Fn(Arc<HookEvent>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.async_hook_with(hook, ASYNC_HOOK_CAPACITY, ASYNC_HOOK_TIMEOUT)
    }

    /// [`async_hook`](Self::async_hook) with a queue of `capacity` records and calls cut off
    /// after `timeout` (both above zero).
    pub fn async_hook_with<F, Fut>(mut self, hook: F, capacity: usize, timeout: Duration) -> Self
    where
        F: Fn(Arc<HookEvent>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if capacity == 0 || timeout.is_zero() {
            self.errors.push(Error::Config(format!(
                "async_hook_with: the capacity ({capacity}) and the timeout ({timeout:?}) must be above zero"
            )));
        }
        self.hooks
            .asyncs
            .push(AsyncHook::new(hook, capacity.max(1), timeout));
        self
    }

    /// Run every handler's `handle` calls inside `middleware` (see
    /// [`middleware`](crate::middleware)), outside the handler's own; several run in the
    /// order added, the first outermost.
    pub fn middleware(mut self, middleware: impl Middleware) -> Self {
        self.middleware.0.push(Arc::new(middleware));
        self
    }

    /// Publish an event on a schedule while the pool runs (see [`Periodic`]): one event per
    /// tick however many pools run it. The pool's scheduler stops when shutdown begins.
    pub fn periodic(mut self, periodic: Periodic) -> Self {
        self.periodic.push(periodic);
        self
    }

    /// How long shutdown waits for running batches before aborting and releasing them.
    /// Defaults to 30 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// How often expired claims are reaped and delivered rows pruned. Defaults to 1 s.
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.config.maintenance.interval = interval;
        self
    }

    /// How often the pool records itself (its row in `conveyor_workers`, live while seen
    /// within 3 intervals) and its queues' activity (see [`Store::activity`]): a handful
    /// of statements per interval, whatever the event rate. Defaults to 5 s.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat = interval;
        self
    }

    /// How long delivered events are kept (causation chains stay traceable meanwhile) before
    /// the pruner deletes them. Defaults to 10 minutes. Idempotency keys do not depend on
    /// it: they are held for the store's own window (24 hours by default).
    ///
    /// Zero deletes each delivered event in the statement that completes its batch: the
    /// fastest drain (one row version and no pruning less per event).
    pub fn delivered_retention(mut self, retention: Duration) -> Self {
        self.config.maintenance.retention = retention;
        self
    }

    /// The pool.
    ///
    /// # Errors
    /// [`Error::Conflict`] when two handlers claim the same queue (event type, routing key
    /// and subscription); [`Error::Config`] for a zero batch size, concurrency, poll interval
    /// or claim timeout, a zero maintenance or heartbeat interval, or a routing key or subscription name
    /// with control characters; for a periodic event with a bad name, interval or cron
    /// expression, or a name registered twice.
    pub fn build(self) -> Result<WorkerPool<S>> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        let mut names = HashSet::new();
        for periodic in &self.periodic {
            periodic.check()?;
            if !names.insert(periodic.name()) {
                return Err(Error::Config(format!(
                    "periodic event {:?} is registered twice",
                    periodic.name()
                )));
            }
        }
        let mut owners: HashMap<&Queue, &'static str> = HashMap::new();
        for reg in &self.handlers {
            if let Some(first) = owners.insert(&reg.spec.queue, reg.spec.name) {
                return Err(Error::Conflict {
                    queue: reg.spec.queue.to_string(),
                    first,
                    second: reg.spec.name,
                });
            }
        }
        if self.config.maintenance.interval.is_zero() {
            return Err(Error::Config(
                "maintenance interval must be above zero".into(),
            ));
        }
        if self.config.heartbeat.is_zero() {
            return Err(Error::Config(
                "heartbeat interval (heartbeat_interval) must be above zero".into(),
            ));
        }
        let id = format!(
            "{}-{}-{}",
            hostname(),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Ok(WorkerPool {
            store: self.store,
            handlers: self.handlers,
            periodic: self.periodic,
            config: self.config,
            id,
            hooks: self.hooks,
            middleware: self.middleware,
        })
    }
}

fn check(spec: &Spec, options: &HandlerOptions) -> Result<()> {
    let named = |what: &str, name: Option<&str>| {
        name.map_or(Ok(()), |n| check_name(what, n))
            .map_err(|e| Error::Config(format!("{}: {e}", spec.name)))
    };
    named(
        "the routing key (ROUTING_KEY)",
        spec.queue.routing_key.as_deref(),
    )?;
    named(
        "the subscription (SUBSCRIPTION or HandlerOptions::subscription)",
        spec.queue.subscription.as_deref(),
    )?;
    let bad = |what: &str| {
        Err(Error::Config(format!(
            "{}: {what} must be above zero",
            spec.name
        )))
    };
    if spec.batch_size == 0 {
        return bad("the batch size (BATCH_SIZE or HandlerOptions::batch_size)");
    }
    if spec.poll_interval.is_zero() {
        return bad("the poll interval (POLL_INTERVAL or HandlerOptions::poll_interval)");
    }
    if spec.claim_timeout.is_zero() {
        return bad("the claim timeout (CLAIM_TIMEOUT or HandlerOptions::claim_timeout)");
    }
    if options.timeout.is_some_and(|t| t.is_zero()) {
        return bad("the handler timeout (HandlerOptions::timeout)");
    }
    spec.settings.check().map_err(|e| {
        Error::Config(format!(
            "{}: {e} (KEY_CONCURRENCY, MAX_IN_FLIGHT or their HandlerOptions)",
            spec.name
        ))
    })?;
    if options.concurrency == 0 {
        return bad("concurrency");
    }
    Ok(())
}

/// This host's name, as pool ids and worker rows record it.
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "conveyor".to_owned())
}
