//! [`Settings`]: everything `conveyor serve` needs besides the database, typed and
//! validated, from the flags ([`Settings::from_args`]) or built in code (tests).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use conveyor_handlers::{PartitionManager, Pipeline, RetryPolicy};

use crate::config::{
    ServeArgs, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DECOMPRESSED_BYTES,
    DEFAULT_MAX_IN_FLIGHT_BYTES,
};
use crate::http::HttpLimits;
use crate::ingest::LogConfig;

/// Everything `serve` needs besides the database, typed and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port. Defaults to `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// API key → tenant namespace. Empty by default; `serve` refuses to start without one.
    pub api_keys: HashMap<String, String>,
    /// The backends, embedder and retry policy of the pipeline. Defaults to all four backends.
    pub pipeline: Pipeline,
    /// Day partitions kept ahead and behind. Defaults to 7 ahead, 30 days of retention.
    pub partitions: PartitionManager,
    /// Request size limits.
    pub limits: Limits,
    /// How long analytics responses are cached; zero disables the cache. Defaults to 5 s.
    pub cache_ttl: Duration,
    /// The ingestion log: where accepted requests are made durable before the 202.
    pub log: LogConfig,
    /// The spool directory of earlier versions: batch files found there at start-up are
    /// moved into the ingestion log. Defaults to `./conveyor-spool`.
    pub legacy_spool_dir: PathBuf,
    /// Keys of the operator routes (`/healthz/detailed`). Empty by default: those routes
    /// answer 401.
    pub operator_keys: Vec<String>,
    /// Whether the operations API refuses every change (403) and only reads. Defaults to false.
    pub ops_read_only: bool,
    /// Whether this process runs the pipeline's workers. Defaults to true.
    pub run_workers: bool,
    /// Events timestamped further ahead of the server's clock are rejected. Defaults to 1 day.
    pub max_future: Duration,
    /// The HTTP server's connection and request limits (timeouts, caps); see [`HttpLimits`].
    pub http: HttpLimits,
}

/// Request size limits of the ingestion API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body on the wire (compressed size for gzip). Defaults to 10 MiB.
    pub max_body_bytes: usize,
    /// Largest gzip body once decompressed. Defaults to 50 MiB.
    pub max_decompressed_bytes: usize,
    /// Request bytes (wire and decompressed) all ingestion requests may hold at once; past
    /// it requests are answered 503 with `Retry-After`. Defaults to 128 MiB.
    pub max_in_flight_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses"),
            api_keys: HashMap::new(),
            pipeline: Pipeline::default(),
            partitions: PartitionManager::default(),
            limits: Limits::default(),
            cache_ttl: Duration::from_secs(5),
            log: LogConfig::default(),
            legacy_spool_dir: PathBuf::from("./conveyor-spool"),
            operator_keys: Vec::new(),
            ops_read_only: false,
            run_workers: true,
            max_future: Duration::from_secs(86_400),
            http: HttpLimits::default(),
        }
    }
}

impl Settings {
    /// The settings `conveyor serve` flags describe.
    ///
    /// # Errors
    /// A message naming `--api-key` when no key is given or a key repeats.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Settings> {
        let mut api_keys = HashMap::new();
        for k in &args.api_keys {
            if api_keys
                .insert(k.key.clone(), k.namespace.clone())
                .is_some()
            {
                anyhow::bail!("--api-key (CONVEYOR_API_KEYS): a key is given twice");
            }
        }
        if api_keys.is_empty() {
            anyhow::bail!("--api-key (CONVEYOR_API_KEYS): at least one KEY=NAMESPACE is required");
        }
        if args.backends.is_empty() {
            anyhow::bail!("--backends (CONVEYOR_BACKENDS): name at least one backend");
        }
        Ok(Settings {
            listen: args.listen,
            api_keys,
            pipeline: Pipeline {
                backends: args.backends.clone(),
                retry: RetryPolicy {
                    max_retries: args.backend_max_retries,
                    base_delay: Duration::from_millis(args.backend_retry_base_ms),
                },
                ..Pipeline::default()
            },
            partitions: PartitionManager {
                ahead_days: args.partitions_ahead,
                retention_days: args.retention_days,
            },
            limits: Limits {
                max_body_bytes: args.max_body_bytes,
                max_decompressed_bytes: args.max_decompressed_bytes,
                max_in_flight_bytes: usize::try_from(args.max_in_flight_bytes)
                    .unwrap_or(usize::MAX),
            },
            cache_ttl: Duration::from_millis(args.cache_ttl_ms),
            log: LogConfig {
                dir: args.log_dir.clone(),
                max_unpublished_bytes: args.log_max_bytes,
                max_unpublished_events: args.log_max_events,
                retention: Duration::from_secs(args.log_retention_secs),
                retained_bytes: args.log_retained_bytes,
                durability: args.log_durability,
                ..LogConfig::default()
            },
            legacy_spool_dir: args.spool_dir.clone(),
            operator_keys: args.operator_keys.iter().map(|k| k.0.clone()).collect(),
            ops_read_only: args.ops_read_only,
            run_workers: !args.no_workers,
            max_future: Duration::from_secs(args.max_future_secs),
            http: HttpLimits {
                max_connections: args.max_connections as usize,
                header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
                idle_timeout: Duration::from_secs(args.idle_timeout_secs),
                body_timeout: Duration::from_millis(args.body_timeout_ms),
                request_timeout: Duration::from_millis(args.request_timeout_ms),
                max_requests_in_flight: args.max_requests_in_flight as usize,
                shutdown_timeout: Duration::from_secs(args.shutdown_timeout_secs),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::config::{Cli, Command};

    fn args(extra: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from([&["conveyor", "serve"][..], extra].concat()).unwrap();
        match cli.command {
            Command::Serve(a) => *a,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn settings_follow_the_flags() {
        let s = Settings::from_args(&args(&[
            "--api-key",
            "k1=acme",
            "--backends",
            "raw,rollup",
            "--no-workers",
            "--backend-max-retries",
            "1",
        ]))
        .unwrap();
        assert_eq!(s.api_keys["k1"], "acme");
        assert_eq!(s.pipeline.backends.len(), 2);
        assert_eq!(s.pipeline.retry.max_retries, 1);
        assert!(!s.run_workers);
    }

    #[test]
    fn default_settings_match_the_flag_defaults() {
        let from_flags = Settings::from_args(&args(&["--api-key", "k=t"])).unwrap();
        let default = Settings::default();
        assert_eq!(from_flags.listen, default.listen);
        assert_eq!(from_flags.limits, default.limits);
        assert_eq!(from_flags.partitions, default.partitions);
        assert_eq!(from_flags.cache_ttl, default.cache_ttl);
        assert_eq!(from_flags.max_future, default.max_future);
        assert_eq!(from_flags.pipeline.retry, default.pipeline.retry);
        assert_eq!(from_flags.log, default.log);
        assert_eq!(from_flags.legacy_spool_dir, default.legacy_spool_dir);
        assert_eq!(from_flags.http, default.http);
    }

    #[test]
    fn a_repeated_key_is_refused_naming_the_flag() {
        let err =
            Settings::from_args(&args(&["--api-key", "k=a", "--api-key", "k=b"])).unwrap_err();
        assert!(err.to_string().contains("--api-key"), "{err}");
    }

    #[test]
    fn the_window_saturates_instead_of_panicking() {
        // defence in depth behind the flags' ranges: settings built in code are not checked
        let window = crate::routes::validate::Window::new(Duration::MAX, u32::MAX);
        assert!(window.check(chrono::Utc::now()).is_ok());
        let window = crate::routes::validate::Window::new(Duration::from_secs(u64::MAX), 1);
        assert!(window.check(chrono::Utc::now()).is_ok());
        // and the flags' largest values give a window that takes today's events
        let s = Settings::from_args(&args(&[
            "--api-key",
            "k=t",
            "--retention-days",
            "36500",
            "--max-future-secs",
            "31622400",
        ]))
        .unwrap();
        let window =
            crate::routes::validate::Window::new(s.max_future, s.partitions.retention_days);
        assert!(window.check(chrono::Utc::now()).is_ok());
    }
}
