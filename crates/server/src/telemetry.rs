//! Tracing: `RUST_LOG` if set, else `conveyor=info`. Logs go to stderr so command output stays clean.

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Install the global subscriber. Call once, from `main`; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "conveyor=info,conveyor_server=info".into());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .try_init();
}
