//! The flags of `conveyor bench stats`. Its row count defaults per backend
//! ([`StatsParams::for_backend`]), so it is an option here, resolved when the backend is
//! known.

use clap::Args;

use super::{positive_f64, positive_secs, positive_u64, secs};
use crate::{Backend, StatsParams};

/// The flags of `conveyor bench stats`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Workload")]
pub struct StatsArgs {
    /// Outbox rows built before timing (99% delivered or dead). Defaults to 10000000 on
    /// Postgres and 1000000 on SQLite.
    #[arg(long, value_parser = positive_u64)]
    pub rows: Option<u64>,
    /// Queues the rows are spread over. Defaults to 1000.
    #[arg(long, default_value_t = StatsParams::default().queues, value_parser = positive_u64)]
    pub queues: u64,
    /// Events published per second while reading stats. Defaults to 5000.
    #[arg(long, default_value_t = StatsParams::default().rate, value_parser = positive_f64)]
    pub rate: f64,
    /// Seconds to read stats for. Defaults to 10.
    #[arg(long, default_value_t = StatsParams::default().duration.as_secs_f64(), value_parser = positive_secs)]
    pub duration_secs: f64,
    /// Publish round robin into the filled queues (every publish changes a queue the read
    /// reports) instead of into one queue of its own.
    #[arg(long)]
    pub spread: bool,
}

impl StatsArgs {
    /// The workload's parameters on `backend`: the sizes given, else its defaults.
    pub fn params(&self, backend: &Backend) -> StatsParams {
        let defaults = StatsParams::for_backend(backend);
        StatsParams {
            rows: self.rows.unwrap_or(defaults.rows),
            queues: self.queues,
            rate: self.rate,
            duration: secs(self.duration_secs),
            spread: self.spread,
        }
    }
}
