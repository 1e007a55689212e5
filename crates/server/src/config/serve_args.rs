//! The flags of `conveyor serve` ([`ServeArgs`]) and the `--api-key KEY=NAMESPACE` parser.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{RangedU64ValueParser, TypedValueParser};
use clap::error::ErrorKind;
use conveyor_handlers::Backend;

use super::*;

/// The flags of `conveyor serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on. Defaults to `127.0.0.1:8080`.
    #[arg(long, env = "CONVEYOR_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// An API key and the tenant namespace it writes and reads, as `KEY=NAMESPACE`, split at
    /// the last `=`: KEY is any printable text without whitespace or `,` (base64 padding
    /// `=` included), NAMESPACE cannot contain `=`. Repeatable; the env form is
    /// comma-separated. At least one is required; no default. A key is never echoed.
    #[arg(
        long = "api-key",
        env = "CONVEYOR_API_KEYS",
        value_name = "KEY=NAMESPACE",
        value_delimiter = ',',
        required = true,
        hide_env_values = true,
        value_parser = ApiKeyParser
    )]
    pub api_keys: Vec<ApiKey>,

    /// The index backends the fan-out feeds, comma-separated.
    /// Defaults to `raw,rollup,keyword,vector`.
    #[arg(
        long,
        env = "CONVEYOR_BACKENDS",
        value_delimiter = ',',
        default_value = "raw,rollup,keyword,vector"
    )]
    pub backends: Vec<Backend>,

    /// Days of raw events kept (1 to 36500); older day partitions are dropped. Defaults to 30.
    #[arg(long, env = "CONVEYOR_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RETENTION_DAYS)))]
    pub retention_days: u32,

    /// Days ahead of today to create raw-event partitions for (0 to 366). Defaults to 7.
    #[arg(long, env = "CONVEYOR_PARTITIONS_AHEAD", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_PARTITIONS_AHEAD)))]
    pub partitions_ahead: u32,

    /// Largest request body accepted, as sent on the wire (compressed), 1 byte to 1 GiB.
    /// Defaults to 10 MiB.
    #[arg(long, env = "CONVEYOR_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_BODY_BYTES as u64))]
    pub max_body_bytes: usize,

    /// Largest gzip body accepted once decompressed, 1 byte to 4 GiB. Defaults to 50 MiB.
    #[arg(long, env = "CONVEYOR_MAX_DECOMPRESSED_BYTES", default_value_t = DEFAULT_MAX_DECOMPRESSED_BYTES,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_DECOMPRESSED_BYTES as u64))]
    pub max_decompressed_bytes: usize,

    /// How long analytics responses are cached, in milliseconds (0 disables; at most one
    /// day, 86400000). Defaults to 5000.
    #[arg(long, env = "CONVEYOR_CACHE_TTL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(0..=MAX_CACHE_TTL_MS))]
    pub cache_ttl_ms: u64,

    /// Retries of a failing index backend before its record is dead-lettered (0 to 1000).
    /// Defaults to 5.
    #[arg(long, env = "CONVEYOR_BACKEND_MAX_RETRIES", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_BACKEND_RETRIES)))]
    pub backend_max_retries: u32,

    /// First retry delay of a failing index backend, in milliseconds (1 to 3600000, the
    /// backoff's cap); doubles per retry. Defaults to 1000.
    #[arg(long, env = "CONVEYOR_BACKEND_RETRY_BASE_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BACKEND_RETRY_BASE_MS))]
    pub backend_retry_base_ms: u64,

    /// The spool directory of earlier versions: batch files found there at start-up are
    /// moved into the ingestion log. Defaults to `./conveyor-spool`.
    #[arg(long, env = "CONVEYOR_SPOOL_DIR", default_value = "./conveyor-spool")]
    pub spool_dir: PathBuf,

    /// Directory of the ingestion log, the write-ahead log every accepted request is made
    /// durable in before its 202 (created 0700). Defaults to `./conveyor-log`.
    #[arg(long, env = "CONVEYOR_LOG_DIR", default_value = "./conveyor-log")]
    pub log_dir: PathBuf,

    /// Unpublished bytes the ingestion log may hold; past it the API answers 503 with
    /// `Retry-After` (nothing is dropped). Defaults to 1073741824 (1 GiB).
    #[arg(long, env = "CONVEYOR_LOG_MAX_BYTES", default_value_t = 1 << 30,
          value_parser = clap::value_parser!(u64).range(1_048_576..))]
    pub log_max_bytes: u64,

    /// Unpublished events the ingestion log may hold; past it the API answers 503 with
    /// `Retry-After`. Defaults to 10000000.
    #[arg(long, env = "CONVEYOR_LOG_MAX_EVENTS", default_value_t = 10_000_000,
          value_parser = clap::value_parser!(u64).range(5_000..))]
    pub log_max_events: u64,

    /// Seconds published log segments are kept. Defaults to 3600.
    #[arg(long, env = "CONVEYOR_LOG_RETENTION_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    pub log_retention_secs: u64,

    /// Most bytes of published log segments kept (oldest deleted first). Defaults to
    /// 268435456 (256 MiB).
    #[arg(long, env = "CONVEYOR_LOG_RETAINED_BYTES", default_value_t = 256 << 20)]
    pub log_retained_bytes: u64,

    /// How an append is made durable before the 202: `fsync` (survives a power loss) or `os`
    /// (survives a crash of the process only). Defaults to `fsync`.
    #[arg(
        long,
        env = "CONVEYOR_LOG_DURABILITY",
        value_enum,
        default_value = "fsync"
    )]
    pub log_durability: crate::ingest::Durability,

    /// Request bytes all ingestion requests may hold at once (wire and decompressed); past
    /// it the API answers 503 with `Retry-After`. Defaults to 134217728 (128 MiB).
    #[arg(long, env = "CONVEYOR_MAX_IN_FLIGHT_BYTES", default_value_t = DEFAULT_MAX_IN_FLIGHT_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(65_536..=1 << 40))]
    pub max_in_flight_bytes: u64,

    /// A key of the operator routes (`/healthz/detailed`). Repeatable; the env form is
    /// comma-separated. No default: without one those routes answer 401.
    #[arg(
        long = "operator-key",
        env = "CONVEYOR_OPERATOR_KEYS",
        value_name = "KEY",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = |s: &str| Ok::<_, String>(OperatorKey(s.to_owned()))
    )]
    pub operator_keys: Vec<OperatorKey>,

    /// Events timestamped more than this many seconds ahead of the server's clock are
    /// rejected with 422 (not clamped); 0 to 31622400 (a year). Defaults to 86400 (one day).
    #[arg(long, env = "CONVEYOR_MAX_FUTURE_SECS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(0..=MAX_FUTURE_SECS))]
    pub max_future_secs: u64,

    /// Run the HTTP API only, without the pipeline's workers (another process runs them).
    /// Defaults to off: workers run.
    #[arg(long, env = "CONVEYOR_NO_WORKERS")]
    pub no_workers: bool,

    /// Serve the operations API (`/v1/ops`, `/v1/queues`, …) read-only: every pause, resume,
    /// replay, purge, skip and cancel answers 403, whatever the key. Defaults to off.
    #[arg(long, env = "CONVEYOR_OPS_READ_ONLY")]
    pub ops_read_only: bool,

    // HTTP connection and request limits (see `crate::http`).
    /// Connections served at once; at the cap new connections wait in the listen backlog
    /// while open ones keep working. Defaults to 1024.
    #[arg(long, env = "CONVEYOR_MAX_CONNECTIONS", value_name = "N",
          default_value_t = crate::http::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Milliseconds a client has to send a request's head; also the most an HTTP/1
    /// keep-alive connection may idle between requests. Defaults to 10000.
    #[arg(long, env = "CONVEYOR_HEADER_READ_TIMEOUT_MS", value_name = "MS",
          default_value_t = crate::http::DEFAULT_HEADER_READ_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub header_read_timeout_ms: u64,

    /// Seconds a connection may have no request in flight before it is closed.
    /// Defaults to 60.
    #[arg(long, env = "CONVEYOR_IDLE_TIMEOUT_SECS", value_name = "SECS",
          default_value_t = crate::http::DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_secs: u64,

    /// Milliseconds to wait for the next piece of a request body before failing it.
    /// Defaults to 30000.
    #[arg(long, env = "CONVEYOR_BODY_TIMEOUT_MS", value_name = "MS",
          default_value_t = crate::http::DEFAULT_BODY_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub body_timeout_ms: u64,

    /// Milliseconds a request may take before it is answered 503 with `Retry-After`.
    /// Defaults to 30000.
    #[arg(long, env = "CONVEYOR_REQUEST_TIMEOUT_MS", value_name = "MS",
          default_value_t = crate::http::DEFAULT_REQUEST_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub request_timeout_ms: u64,

    /// Requests handled at once (`/healthz` not counted); further ones are answered 503
    /// with `Retry-After`. Defaults to 512.
    #[arg(long, env = "CONVEYOR_MAX_REQUESTS_IN_FLIGHT", value_name = "N",
          default_value_t = crate::http::DEFAULT_MAX_REQUESTS_IN_FLIGHT,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_requests_in_flight: u32,

    /// On shutdown, seconds open connections may take to finish before they are dropped.
    /// Defaults to 10.
    #[arg(long, env = "CONVEYOR_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS",
          default_value_t = crate::http::DEFAULT_SHUTDOWN_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_timeout_secs: u64,
}

/// One `--api-key KEY=NAMESPACE`. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The bearer token clients send.
    pub key: String,
    /// The tenant namespace the key writes and reads.
    pub namespace: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &"***")
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Parses `--api-key`. Not a plain function: clap would echo the invalid value, the key,
/// in its error; this error names the flag and says what is wrong, without the value.
#[derive(Debug, Clone, Copy)]
struct ApiKeyParser;

impl TypedValueParser for ApiKeyParser {
    type Value = ApiKey;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ApiKey, clap::Error> {
        let problem = match value.to_str() {
            Some(s) => match parse_api_key(s) {
                Ok(key) => return Ok(key),
                Err(problem) => problem,
            },
            None => "is not valid UTF-8",
        };
        let message = format!(
            "invalid value for '--api-key <KEY=NAMESPACE>' (CONVEYOR_API_KEYS): {problem} \
             (the value is not shown)"
        );
        Err(cmd.clone().error(ErrorKind::ValueValidation, message))
    }
}

/// `KEY=NAMESPACE`, split at the last `=` (a key may end in base64 padding).
fn parse_api_key(s: &str) -> Result<ApiKey, &'static str> {
    let (key, namespace) = s.rsplit_once('=').ok_or("expected KEY=NAMESPACE")?;
    let (key, namespace) = (key.trim(), namespace.trim());
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("KEY must be non-empty printable text without whitespace");
    }
    if namespace.is_empty() || namespace.len() > 64 || namespace.chars().any(char::is_control) {
        return Err("NAMESPACE must be 1 to 64 bytes of printable text without `=`");
    }
    Ok(ApiKey {
        key: key.to_owned(),
        namespace: namespace.to_owned(),
    })
}

/// One `--operator-key`; its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorKey(pub String);

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorKey(***)")
    }
}
