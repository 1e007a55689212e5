//! The flags of `conveyor bench fifo`. Its sizes default per backend
//! ([`FifoParams::for_backend`]), so they are options here, resolved when the backend is
//! known.

use clap::Args;

use super::{non_negative_secs, positive_secs, positive_u64, positive_usize, secs};
use crate::{Backend, FifoParams};

/// The most `--max-in-flight`: the framework's highest global limit.
const MAX_IN_FLIGHT: i64 = 10_000;

/// The flags of `conveyor bench fifo`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Workload")]
pub struct FifoArgs {
    /// Events to publish, round robin over the keys. Defaults to 1000000 on Postgres and
    /// 100000 on SQLite.
    #[arg(long, value_parser = positive_u64)]
    pub events: Option<u64>,
    /// Ordering keys. Defaults to 100000 on Postgres and 10000 on SQLite.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub keys: Option<u32>,
    /// Keys whose head dies before timing, parking the key and its other events. Defaults
    /// to 10% of --keys.
    #[arg(long)]
    pub parked_keys: Option<u32>,
    /// Keys whose head keeps retrying with an hour's backoff, holding their other events.
    /// Defaults to 1% of --keys (1000 on Postgres).
    #[arg(long)]
    pub retrying_keys: Option<u32>,
    /// Events per handler batch. Defaults to 100.
    #[arg(long, default_value_t = FifoParams::default().batch_size, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Concurrent workers. Defaults to 4.
    #[arg(long, default_value_t = FifoParams::default().concurrency, value_parser = positive_usize)]
    pub concurrency: usize,
    /// Events per `publish_batch` call. Defaults to 5000.
    #[arg(long, default_value_t = FifoParams::default().publish_chunk, value_parser = positive_usize)]
    pub publish_chunk: usize,
    /// Also drain the ordered queue under this global limit (1 to 10000 events in flight
    /// across every process) and report the most seen in flight. Defaults to none.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_IN_FLIGHT))]
    pub max_in_flight: Option<u32>,
    /// Give up on a drain, or on settling the held keys, after this many seconds. Defaults
    /// to 600.
    #[arg(long, default_value_t = FifoParams::default().timeout.as_secs_f64(), value_parser = positive_secs)]
    pub timeout_secs: f64,
    /// Seconds the pool keeps delivered events before pruning them; 0 deletes each as its
    /// batch completes. Defaults to the framework's 600.
    #[arg(long, default_value_t = FifoParams::default().delivered_retention.as_secs_f64(), value_parser = non_negative_secs)]
    pub delivered_retention_secs: f64,
}

impl FifoArgs {
    /// The workload's parameters on `backend`: the sizes given, else its defaults.
    pub fn params(&self, backend: &Backend) -> FifoParams {
        let defaults = FifoParams::for_backend(backend);
        let keys = self.keys.unwrap_or(defaults.keys);
        let sized = FifoParams::with_sizes(self.events.unwrap_or(defaults.events), keys);
        FifoParams {
            parked_keys: self.parked_keys.unwrap_or(sized.parked_keys),
            retrying_keys: self.retrying_keys.unwrap_or(sized.retrying_keys),
            batch_size: self.batch_size,
            concurrency: self.concurrency,
            publish_chunk: self.publish_chunk,
            max_in_flight: self.max_in_flight,
            timeout: secs(self.timeout_secs),
            delivered_retention: secs(self.delivered_retention_secs),
            ..sized
        }
    }
}
