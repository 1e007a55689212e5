//! The command line. Parsed once in `main`; library crates never read the environment.

use clap::{Parser, Subcommand};

/// Durable event processing on PostgreSQL: migrations and operator controls.
#[derive(Debug, Parser)]
#[command(name = "conveyor", version, about)]
pub struct Cli {
    /// PostgreSQL URL. Required (env `DATABASE_URL`).
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "",
        hide_default_value = true
    )]
    pub database_url: String,

    /// The namespace (tenant) to act on. Defaults to `default`.
    #[arg(long, env = "CONVEYOR_NAMESPACE", global = true, default_value = conveyor::DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the embedded migrations.
    Migrate,
    /// Show per-queue counts: pending, due, in flight, retrying, dead, delivered, paused.
    Stats {
        /// Print one JSON object per queue instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop every process from claiming a queue.
    Pause(QueueArgs),
    /// Let a paused queue be claimed again.
    Resume(QueueArgs),
    /// List dead letters, oldest first.
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
    },
    /// Return dead letters to the queue with a fresh retry budget.
    Replay {
        /// The event ids to replay.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<i64>,
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
}

/// A queue: an event type and an optional routing key.
#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// The event type (the payload's `Event::NAME`).
    #[arg(value_parser = non_empty)]
    pub event_type: String,
    /// The routing key, for handlers registered with one.
    #[arg(long)]
    pub routing_key: Option<String>,
}

/// An optional queue filter.
#[derive(Debug, clap::Args)]
pub struct OptionalQueueArgs {
    /// Only events of this type.
    #[arg(long, value_parser = non_empty)]
    pub event_type: Option<String>,
    /// With `--event-type`: only this routing key.
    #[arg(long, requires = "event_type")]
    pub routing_key: Option<String>,
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn routing_key_filter_needs_an_event_type() {
        let err = Cli::try_parse_from(["conveyor", "purge", "--routing-key", "raw"]).unwrap_err();
        assert!(err.to_string().contains("--event-type"), "{err}");
    }
}
