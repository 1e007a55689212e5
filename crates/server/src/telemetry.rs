//! Tracing: `RUST_LOG` if set, else info for conveyor's crates and tower-http.
//! Logs go to stderr so command output stays clean.

use std::io::IsTerminal as _;

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Install the global subscriber. Call once, from `main`; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        "conveyor=info,conveyor_handlers=info,conveyor_server=info,tower_http=info".into()
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .try_init();
}
