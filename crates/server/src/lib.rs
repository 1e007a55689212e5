//! The `conveyor` binary's library: the HTTP API and the pipeline's workers (`serve`),
//! configuration, telemetry and the operator commands.
//!
//! `main` only calls [`cli_main`], so tests (and a test binary) run exactly what the binary
//! runs; [`Server`] is the in-process entry point for tests that drive the API.
//!
//! # Layout
//! - [`config`]: the clap command line (flags with `CONVEYOR_*` env fallbacks).
//! - [`telemetry`]: the tracing subscriber, installed once.
//! - `serve`: [`Settings`], [`Server`] (bind, run) and [`shutdown_signal`].
//! - `app`: the router, its middleware and the shared state; `routes/*`: one file per area.
//! - `api_error`: `ApiError`, every failure's status and JSON body; `auth`: API key → tenant.
//! - `cache`: the analytics TTL cache; `workers`: the pipeline's pool registration.
//! - `spool`: [`Spool`], where accepted batches wait while the database is down.
//! - `admin`: the operator commands (stats, pause/resume, dead letters).

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use conveyor::PgStore;
use sqlx::postgres::PgPoolOptions;

mod admin;
mod api_error;
mod app;
mod auth;
mod cache;
pub mod config;
mod routes;
mod serve;
mod spool;
pub mod telemetry;
mod workers;

pub use serve::{shutdown_signal, Limits, Server, Settings};
pub use spool::Spool;

use config::{Cli, Command, RollupCommand};

/// Database connections `serve` opens: the workers' 8 plus the pool's reserve of 4, and the
/// rest for the API.
const SERVE_CONNECTIONS: u32 = 30;

/// Everything `main` does: parse `args` (the program name first), install tracing, run the
/// command, and turn the outcome into an exit code (usage errors exit 2, failures 1).
pub async fn cli_main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    telemetry::init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error.cause_chain = ?e, error.message = %e, "command failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run one parsed command line; `serve` runs until ctrl-c or SIGTERM.
///
/// # Errors
/// A message naming the flag when the database cannot be reached or a flag is invalid, and
/// any database error.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.database_url.is_empty() {
        anyhow::bail!("--database-url (or DATABASE_URL) is required: a postgres:// URL");
    }
    let connections = match cli.command {
        Command::Serve(_) => SERVE_CONNECTIONS,
        _ => 2,
    };
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&cli.database_url)
        .await
        .with_context(|| {
            format!(
                "--database-url (DATABASE_URL): cannot connect to {}",
                redact(&cli.database_url)
            )
        })?;
    let store = PgStore::new(pool)
        .with_namespace(&cli.namespace)
        .context("--namespace (CONVEYOR_NAMESPACE)")?;
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::from_args(&args)?;
            Server::bind(store, settings)
                .await?
                .run(shutdown_signal())
                .await
        }
        Command::Migrate => {
            conveyor_handlers::migrate(store.pool())
                .await
                .context("applying migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Rollup {
            command: RollupCommand::Rebuild { from, to },
        } => {
            let report = conveyor_handlers::rebuild_rollups(store.pool(), from, to)
                .await
                .context("rebuilding rollups")?;
            println!(
                "rebuilt the rollups of {} days ({from} to {to}) from {} events",
                report.days, report.events
            );
            Ok(())
        }
        Command::Stats { json } => admin::stats(&store, json).await,
        Command::Pause(q) => admin::pause(&store, q).await,
        Command::Resume(q) => admin::resume(&store, q).await,
        Command::DeadLetters {
            queue,
            after,
            limit,
        } => admin::dead_letters(&store, queue, after, limit).await,
        Command::Replay { ids } => admin::replay(&store, ids).await,
        Command::Purge { queue, all } => admin::purge(&store, queue, all).await,
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
