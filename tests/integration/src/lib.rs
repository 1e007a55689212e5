//! Helpers for the end-to-end tests: run the server's real command line against the fresh
//! database `#[sqlx::test]` creates for each test.

use clap::Parser;
use conveyor_server::config::Cli;
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;

/// The URL of the database behind `opts`.
pub fn database_url(opts: &PgConnectOptions) -> String {
    opts.to_url_lossy().to_string()
}

/// Parse `args` exactly as the `conveyor` binary does (flags and env fallbacks) and run
/// them; returns the error text on failure.
pub async fn conveyor(args: &[&str]) -> Result<(), String> {
    let cli = Cli::try_parse_from(std::iter::once("conveyor").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    conveyor_server::run(cli)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// A payload the tests publish.
#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Ping {
    /// Any number.
    #[garde(skip)]
    pub n: u32,
}

impl conveyor::Event for Ping {
    const NAME: &'static str = "it.ping";
}
