//! The command line. Parsed once in `main`; library crates never read the environment.
//!
//! The commands read these types; this module reads none of theirs (the flags of
//! `conveyor bench` are [`conveyor_bench::BenchArgs`], embedded here), so imports run one way. Every value is checked while parsing
//! — numbers against their ranges, API keys without echoing them — so a bad one is a usage
//! error naming the flag (exit code 2), not a failure on the first request.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};

mod serve_args;

pub use serve_args::{ApiKey, OperatorKey, ServeArgs};

/// Durable event processing on SQLite or PostgreSQL: the server, migrations and operator
/// controls.
#[derive(Parser)]
#[command(name = "conveyor", version, about)]
pub struct Cli {
    /// The database: a `postgres://` (or `postgresql://`) URL, or a `sqlite://PATH` URL.
    /// Defaults to none: the embedded SQLite database in `--data-dir`. Empty counts as none.
    /// Its value is never shown (it may hold a password).
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Directory of the embedded SQLite database (`conveyor.db` inside it), used when no
    /// `--database-url` is given; created on first run. Defaults to `./conveyor-data`.
    #[arg(long, env = "CONVEYOR_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The outbox namespace to act on: the server's own queues live in it (tenants come from
    /// API keys). Defaults to `default`.
    #[arg(long, env = "CONVEYOR_NAMESPACE", global = true, default_value = conveyor::DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API, the pipeline's workers and the partition manager.
    Serve(Box<ServeArgs>),
    /// Apply the embedded migrations: the outbox's and the pipeline's, or with
    /// `--outbox-only` only the outbox's (a database your application uses through the
    /// `conveyor` library, where the server's pipeline tables do not belong).
    Migrate {
        /// Only the outbox's tables (what `PgStore::migrate` applies).
        #[arg(long)]
        outbox_only: bool,
    },
    /// Rollup maintenance.
    Rollup {
        /// What to do with the rollups.
        #[command(subcommand)]
        command: RollupCommand,
    },
    /// Show per-queue counts: pending, due, in flight, retrying, dead, delivered, cancelled,
    /// paused.
    Stats {
        /// Print one JSON object per queue instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop every process from claiming a queue. A queue the database has never seen is
    /// refused (exit 2, listing the known ones) unless `--force`.
    Pause {
        /// The queue.
        #[command(flatten)]
        queue: QueueArgs,
        /// Pause it even if no event of it exists yet.
        #[arg(long)]
        force: bool,
    },
    /// Let a paused queue be claimed again. A queue the database has never seen is refused
    /// (exit 2, listing the known ones) unless `--force`.
    Resume {
        /// The queue.
        #[command(flatten)]
        queue: QueueArgs,
        /// Resume it even if no event of it exists.
        #[arg(long)]
        force: bool,
    },
    /// List dead letters, oldest first: a table, or one JSON object per line with `--json`.
    DeadLetters {
        /// Only this queue.
        #[command(flatten)]
        queue: OptionalQueueArgs,
        /// Only ids after this one (the cursor printed by the previous page).
        #[arg(long)]
        after: Option<i64>,
        /// How many to list. Defaults to 50.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print one JSON object per dead letter instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Return dead letters (or cancelled events) to the queue with a fresh retry budget: the
    /// ids given, or with `--all` every dead letter (of one queue with `--event-type`). Exits
    /// 1 naming any id that is neither.
    Replay {
        /// The event ids to replay.
        #[arg(required_unless_present = "all", conflicts_with = "all", num_args = 1..)]
        ids: Vec<i64>,
        /// Only this queue (with `--all`).
        #[command(flatten)]
        queue: OptionalQueueArgs,
        /// Replay every dead letter (of the `--event-type` queue if given).
        #[arg(long)]
        all: bool,
    },
    /// Cancel events by id, or the one published with `--key`: pending ones (due, scheduled
    /// or waiting for a retry) at once; running ones when their batch completes, unless it
    /// delivers them. Prints one line per id; exits 1 naming any id that was not found or
    /// had already finished (delivered, dead, cancelled).
    Cancel {
        /// The event ids to cancel.
        #[arg(required_unless_present = "key", conflicts_with = "key", num_args = 1..)]
        ids: Vec<i64>,
        /// Cancel the event published with this idempotency key instead.
        #[arg(long, value_parser = non_empty)]
        key: Option<String>,
        /// Why, kept as the event's cancel reason.
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
    },
    /// Delete dead letters of one queue, or of every queue with `--all`.
    Purge {
        /// Only this queue.
        #[command(flatten)]
        queue: OptionalQueueArgs,
        /// Purge the dead letters of every queue.
        #[arg(long, conflicts_with = "event_type")]
        all: bool,
    },
    /// Show one event, in whatever state it is: a `key: value` list, or JSON with `--json`.
    /// Exits 1 when the namespace has no such event.
    Event {
        /// What to do with it.
        #[command(subcommand)]
        command: EventCommand,
    },
    /// List events in every state, oldest id first: a table, or one JSON object per line
    /// with `--json`.
    Events {
        /// What to list.
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// The subscriptions recorded in the database: which handlers get a copy of each event.
    Subscriptions {
        /// What to do with them.
        #[command(subcommand)]
        command: SubscriptionsCommand,
    },
    /// Ordering keys (`Message::ordering_key`) whose head died under the `park` policy: list
    /// them, or skip a dead head so the events behind it run.
    Keys {
        /// What to do with them.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Measure a workload on scratch databases it creates and removes: ceiling, throughput,
    /// latency, ingest or soak. `--database-url` names the Postgres server to create them on
    /// (default postgres://root@127.0.0.1:5432/postgres).
    Bench(Box<conveyor_bench::BenchArgs>),
}

/// Not derived: the database URL may hold a password.
impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field(
                "database_url",
                &conveyor_bench::redact_url(&self.database_url),
            )
            .field("data_dir", &self.data_dir)
            .field("namespace", &self.namespace)
            .field("command", &self.command)
            .finish()
    }
}

/// The `rollup` subcommands.
#[derive(Debug, Subcommand)]
pub enum RollupCommand {
    /// Recompute the daily rollups of a day range from `events_raw`.
    Rebuild {
        /// First day (UTC), inclusive: `YYYY-MM-DD`.
        #[arg(long)]
        from: NaiveDate,
        /// Last day (UTC), inclusive: `YYYY-MM-DD`.
        #[arg(long)]
        to: NaiveDate,
    },
}

/// The `subscriptions` subcommands.
#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// List them: a table, or one JSON object per line with `--json`.
    List {
        /// Print one JSON object per subscription instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove one, and delete its copies still pending: later events get no copy for it
    /// (a pool still running it records it again at its next start). One that is not
    /// recorded is refused (exit 2, listing the recorded ones).
    Remove {
        /// The subscription's queue.
        #[command(flatten)]
        queue: QueueArgs,
    },
}

/// The `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the parked keys, oldest first: queue, ordering key, the dead head's id and when
    /// the key was parked; a table, or one JSON object per line with `--json`.
    Parked {
        /// Only this queue.
        #[command(flatten)]
        queue: OptionalQueueArgs,
        /// How many to list. Defaults to 50.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print one JSON object per parked key instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Unpark `KEY` of a queue: its dead head stays in the dead letters and the events
    /// behind it run. Prints the dead head's id; exits 1 when the key is not parked.
    Skip {
        /// The key's queue.
        #[command(flatten)]
        queue: QueueArgs,
        /// The ordering key.
        #[arg(value_parser = non_empty)]
        key: String,
    },
}

/// The `event` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Show the event `ID`.
    Show {
        /// The event's id.
        id: i64,
        /// Print it as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// The `events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List the events the flags select.
    List {
        /// Only this queue.
        #[command(flatten)]
        queue: OptionalQueueArgs,
        /// Only events in this state: pending, scheduled, retrying, running, delivered, dead or
        /// cancelled.
        #[arg(long, value_parser = clap::value_parser!(conveyor::EventStatus))]
        state: Option<conveyor::EventStatus>,
        /// Only events published at or after this instant (RFC 3339, e.g. `2026-12-01T00:00:00Z`).
        #[arg(long, value_name = "TIME")]
        from: Option<DateTime<Utc>>,
        /// Only events published before this instant (RFC 3339).
        #[arg(long, value_name = "TIME")]
        until: Option<DateTime<Utc>>,
        /// Only ids after this one (the cursor printed by the previous page).
        #[arg(long)]
        after: Option<i64>,
        /// How many to list. Defaults to 50.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=conveyor::EventFilter::MAX_LIMIT as i64))]
        limit: u32,
        /// Print one JSON object per event instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Default of `--data-dir`: the embedded database is `./conveyor-data/conveyor.db`.
pub const DEFAULT_DATA_DIR: &str = "./conveyor-data";
/// The embedded database's file name inside `--data-dir`.
pub const DATABASE_FILE: &str = "conveyor.db";
/// Default of `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default of `--max-body-bytes`: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Default of `--max-decompressed-bytes`: 50 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 50 * 1024 * 1024;
/// Default of `--max-in-flight-bytes`: 128 MiB.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 128 * 1024 * 1024;

/// Most `--retention-days`: 100 years, far inside the calendar's range.
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// Most `--partitions-ahead`: a year of day partitions.
pub const MAX_PARTITIONS_AHEAD: u32 = 366;
/// Most `--max-body-bytes`: 1 GiB (a body is held in memory while it is read).
pub const MAX_BODY_BYTES: usize = 1024 * 1024 * 1024;
/// Most `--max-decompressed-bytes`: 4 GiB.
pub const MAX_DECOMPRESSED_BYTES: usize = 4 * 1024 * 1024 * 1024;
/// Most `--cache-ttl-ms`: one day.
pub const MAX_CACHE_TTL_MS: u64 = 86_400_000;
/// Most `--backend-max-retries`.
pub const MAX_BACKEND_RETRIES: u32 = 1_000;
/// Most `--backend-retry-base-ms`: one hour, the backoff's cap.
pub const MAX_BACKEND_RETRY_BASE_MS: u64 = 3_600_000;
/// Most `--max-future-secs`: one year.
pub const MAX_FUTURE_SECS: u64 = 366 * 86_400;

/// A queue: an event type and an optional routing key.
#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// The event type (the payload's `Event::NAME`).
    #[arg(value_parser = non_empty)]
    pub event_type: String,
    /// The routing key, for handlers registered with one.
    #[arg(long)]
    pub routing_key: Option<String>,
    /// The subscription, for handlers registered under one (`SUBSCRIPTION`); none is the
    /// default subscription.
    #[arg(long, value_parser = non_empty)]
    pub subscription: Option<String>,
}

/// An optional queue filter.
#[derive(Debug, clap::Args)]
pub struct OptionalQueueArgs {
    /// Only events of this type (`--queue` is the same flag).
    #[arg(long, visible_alias = "queue", value_parser = non_empty)]
    pub event_type: Option<String>,
    /// With `--event-type`: only this routing key.
    #[arg(long, requires = "event_type")]
    pub routing_key: Option<String>,
    /// With `--event-type`: only this subscription (none is the default subscription).
    #[arg(long, requires = "event_type", value_parser = non_empty)]
    pub subscription: Option<String>,
}

impl QueueArgs {
    /// The queue these flags name.
    pub fn queue(&self) -> conveyor::Queue {
        conveyor::Queue::new(&self.event_type, self.routing_key.as_deref())
            .in_subscription(self.subscription.as_deref().unwrap_or(""))
    }
}

impl OptionalQueueArgs {
    /// The queue these flags name, if any.
    pub fn queue(&self) -> Option<conveyor::Queue> {
        self.event_type.as_ref().map(|t| {
            conveyor::Queue::new(t, self.routing_key.as_deref())
                .in_subscription(self.subscription.as_deref().unwrap_or(""))
        })
    }
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests;
