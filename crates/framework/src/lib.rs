//! Conveyor: durable, pull-based event processing on PostgreSQL, or embedded on SQLite.
//!
//! Declare typed [`EventHandler`]s, register them on a [`WorkerPool`], and publish events
//! through a [`Store`] — inside your own transaction if you like. Workers claim batches with
//! `FOR UPDATE SKIP LOCKED`, round-robin across fairness groups, and commit each batch's
//! outcomes together with the events the handler emitted and the handler's own writes.
//!
//! # Quickstart
//! ```no_run
//! use conveyor::{Batch, Context, EventHandler, HandlerError, PgStore, Store, WorkerPool};
//!
//! #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
//! struct OrderPlaced {
//!     #[garde(length(min = 1))]
//!     order_id: String,
//! }
//! impl conveyor::Event for OrderPlaced {
//!     const NAME: &'static str = "order_placed";
//! }
//!
//! struct Audit;
//!
//! #[async_trait::async_trait]
//! impl EventHandler for Audit {
//!     type Event = OrderPlaced;
//!     const BATCH_SIZE: usize = 100;
//!
//!     async fn handle(&self, batch: Batch<OrderPlaced>, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
//!         for item in &batch {
//!             sqlx::query("insert into audit (order_id) values ($1)")
//!                 .bind(&item.payload.order_id)
//!                 .execute(ctx.db().await?)
//!                 .await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let store = PgStore::connect("postgres://localhost/app").await?;
//! store.migrate().await?; // beside your own sqlx::migrate!(), in either order
//! store.publish(OrderPlaced { order_id: "o-1".into() }).await?;
//!
//! let pool = WorkerPool::builder(store).register(Audit).build()?;
//! pool.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `event` — [`Event`] payloads, [`Message`] (publish options), [`Queue`], [`EventId`].
//! - `handler` — the [`EventHandler`] contract, [`Batch`], [`HandlerError`], [`ResultExt`].
//! - `context` — [`Context`]: the batch's transaction, emitting, per-item outcomes.
//! - `store` — the [`Store`] SPI and its row types; `store/postgres` is [`PgStore`],
//!   `store/sqlite` is [`SqliteStore`] (the embedded backend, same contract).
//! - `pool` — [`WorkerPool`] and its [`PoolBuilder`] (conflicts are caught at `build`).
//! - `periodic` — [`Periodic`] events (every interval or on a cron expression, once per tick
//!   across processes) and their scheduler task, [`MissedTicks`].
//! - `worker` — the claim → handle → complete loop of one worker.
//! - [`hooks`] — [`HookEvent`] records at each point of a batch's life, at the lease and on
//!   publish, for sync and bounded async hooks; [`HookFailures`] counts their failures.
//! - [`middleware`] — [`Middleware`](middleware::Middleware) around `handle`, and the two that
//!   ship: [`TracingMiddleware`](middleware::TracingMiddleware),
//!   [`MetricsMiddleware`](middleware::MetricsMiddleware).
//! - [`items`] — [`for_each_concurrent`](items::for_each_concurrent): a batch's items
//!   concurrently, up to a bound, each with its own outcome.
//! - `runner` — decoding, validation and per-item outcomes for a typed handler.
//! - `lease` — heartbeats, the reaper (crash recovery) and the pruner.
//! - `activity` — the pool's in-process wait/run histograms and counts per minute, and the
//!   heartbeat that records them and the pool ([`Store::activity`], [`Store::workers`]).
//! - `wake` — LISTEN/NOTIFY wake-ups routed to workers.
//! - `shutdown` — two-phase graceful shutdown.
//! - [`retry`] — exponential backoff with jitter.
//! - `testing` (feature `testing`) — run a batch (as any attempt) and inspect its outcomes and
//!   typed emitted events, drain a pool, assert on the outbox, a temporary SQLite store.
//! - [`migrations`] — Conveyor's own migration history (`conveyor_migrations`).
//! - `sql` — [`sql`] statements, [`SqlStore`]: one DB-writing handler for both backends.
//! - `error` — [`Error`] and [`Result`].
//! - `trace` — W3C trace context from publisher to handler (see below).
//!
//! # Tracing
//! Every batch runs inside an `info`-level span named `conveyor.batch`, with the fields
//! `handler` (the handler's type name), `queue` (`event_type` or `event_type:routing_key`),
//! `worker` (the worker's id, the prefix of `claimed_by`), `batch_size`, and, recorded when
//! the batch completes, `delivered`, `retried`, `dead`, `cancelled` (item counts) and
//! `duration_ms`.
//! The handler's own events and spans nest inside it; filter on it with
//! `RUST_LOG=conveyor=info` or a subscriber's span filter.
//!
//! # Trace context
//! Every event can carry a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), stored
//! in the outbox row and handed to the worker with the claim ([`Item::traceparent`],
//! [`ClaimedEvent::traceparent`], [`EventRecord::traceparent`]). Set it with
//! [`Message::traceparent`] (validated at publish); with the `opentelemetry` feature a
//! publish (`Store::publish*`, [`Context::emit`]) that states none stores the current
//! span's OpenTelemetry context, read through `tracing-opentelemetry`. The worker then makes
//! the `conveyor.batch` span the child of its items' context when they are all in one trace
//! (a batch of one, say), or links it to each item's context when they are in several; an
//! event emitted inside the handler carries the batch span's context, so a chain of events
//! is one trace. `Item::otel_context` (with the feature) gives an item's context for spans of your own.
//! Without the feature nothing is read from spans and no OpenTelemetry type is exported;
//! explicit traceparents are still stored and handed down to emitted events. Install the
//! layer from the re-exported crates (`conveyor::tracing_opentelemetry::layer()`), since a
//! layer of another version is invisible to Conveyor.
//! [`TracingMiddleware`](middleware::TracingMiddleware) adds a `conveyor.handle` span around
//! each `handle` call inside it, and [hooks] see every batch's records for anything
//! else (metrics, audit logs, counting completions only once they commit).

mod activity;
mod context;
mod error;
mod event;
mod handler;
pub mod hooks;
pub mod items;
mod lease;
pub mod middleware;
pub mod migrations;
mod periodic;
mod pool;
pub mod retry;
mod runner;
mod shutdown;
mod sql;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;
mod wake;
mod worker;

/// The crates a handler author's code must match, re-exported so a different version in
/// your `Cargo.toml` cannot silently diverge from Conveyor's: use `conveyor::sqlx` for
/// queries on `ctx.db()` and `conveyor::async_trait` for `impl EventHandler`. The
/// `garde::Validate` derive expands to `::garde::…`, so your own `garde` dependency must be
/// this version (`cargo tree -i garde` lists both when they differ, and rustc's
/// "multiple different versions of crate `garde`" note names the mismatch).
pub use async_trait::async_trait;
pub use garde;
pub use sqlx;
/// The OpenTelemetry crates trace context works with (feature `opentelemetry`): your
/// tracer and `tracing_opentelemetry::layer()` must come from these versions, or Conveyor
/// sees no span context (see [Trace context](crate#trace-context)).
#[cfg(feature = "opentelemetry")]
pub use {opentelemetry, tracing_opentelemetry};

/// What a handler module needs: `use conveyor::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "postgres")]
    pub use crate::PgStore;
    #[cfg(feature = "sqlite")]
    pub use crate::SqliteStore;
    pub use crate::{
        async_trait, sql, Batch, Context, Event, EventHandler, HandlerError, Message, SqlStore,
        Store, WorkerPool,
    };
}

pub use context::Context;
pub use error::{Error, Result};
pub use event::{
    Event, EventId, Message, NewEvent, Published, Queue, PRIORITY_DEFAULT, PRIORITY_MAX,
    PRIORITY_MIN,
};
pub use handler::{Batch, EventHandler, HandlerError, Item, ResultExt};
pub use hooks::{
    BatchInfo, BatchRecord, HookEvent, HookFailures, OutcomeCounts, PublishSource, Rollback,
};
pub use periodic::{MissedTicks, Periodic};
pub use pool::{HandlerOptions, PoolBuilder, WorkerPool};
pub use sql::{sql, Sql, SqlRow, SqlStore, SqlValue};
#[cfg(feature = "postgres")]
pub use store::postgres::{PgStore, Wakeup};
#[cfg(feature = "sqlite")]
pub use store::sqlite::{SqliteStore, SqliteTx, SQLITE_MIGRATOR};

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!(
    "conveyor needs a backend: enable the `postgres` or the `sqlite` feature (both by default)"
);

/// The store `EventHandler` and `Context` mean when none is named: [`PgStore`] with the
/// `postgres` feature, else [`SqliteStore`].
#[cfg(feature = "postgres")]
pub type DefaultStore = PgStore;
/// The store `EventHandler` and `Context` mean when none is named: [`PgStore`] with the
/// `postgres` feature, else [`SqliteStore`].
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
pub type DefaultStore = SqliteStore;
pub use store::{
    ActivityMinute, AttemptError, CancelOutcome, CancelReport, ClaimRequest, ClaimedEvent,
    Completion, DeadHead, DeadLetter, EventFilter, EventPage, EventRecord, EventStatus,
    MinuteCount, Outcome, ParkedKey, Percentiles, PublishReport, QueueActivity, QueueSettings,
    QueueStats, Store, Subscription, Wake, WorkerInfo, DEFAULT_NAMESPACE,
};

/// The README's examples, compiled and checked as doctests so the README never lies.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The PostgreSQL outbox migrations, embedded. Apply them with
/// [`PgStore::migrate`], which records them in Conveyor's own history table
/// (`conveyor_migrations`, see [`migrations`]) rather than sqlx's `_sqlx_migrations`, so they
/// never clash with your application's `sqlx::migrate!()`. `MIGRATOR.run(&pool)` would
/// record them in `_sqlx_migrations`, and each migrator would then refuse the other's
/// versions; it is fine only on a database nothing else migrates, such as
/// `#[sqlx::test(migrator = "conveyor::MIGRATOR")]` in a test that uses Conveyor's tables
/// alone. With your own migrations too, use `#[sqlx::test]` (your `./migrations`) and call
/// `PgStore::new(pool).migrate()` first in the test.
#[cfg(feature = "postgres")]
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");
