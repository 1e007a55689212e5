//! The `conveyor` binary's library: the HTTP API and the pipeline's workers (`serve`),
//! configuration, telemetry and the operator commands.
//!
//! `main` only calls [`cli_main`], so tests (and a test binary) run exactly what the binary
//! runs; [`Server`] is the in-process entry point for tests that drive the API. Everything is
//! generic over the backend ([`PipelineStore`]): the embedded SQLite database by default, or
//! PostgreSQL with `--database-url postgres://…` (see [`database`]).
//!
//! # Layout
//! - [`config`]: the clap command line (flags with `CONVEYOR_*` env fallbacks).
//! - [`database`]: which backend `--database-url` / `--data-dir` name, and opening it.
//! - [`telemetry`]: the tracing subscriber, installed once.
//! - `settings`: [`Settings`], what `serve` needs besides the database.
//! - `serve`: [`Server`] (bind, run) and [`shutdown_signal`].
//! - `http`: the HTTP serving loop and its connection limits ([`HttpLimits`]).
//! - `app`: the router and its middleware; `state`: `AppState`, what every route shares;
//!   `routes/*`: one file per area.
//! - `api_error`: `ApiError`, every failure's status and JSON body; `auth`: API key → tenant.
//! - `dashboard`: the operator dashboard at `/` (embedded static files);
//! - `cache`: the analytics TTL cache; `workers`: the pipeline's pool registration.
//! - `ingest`: the ingestion log, where every accepted request is made durable before its
//!   202, and its publisher into the store; `outage`: which database errors count as
//!   "down", per backend.
//! - `admin`: the operator commands (stats, pause/resume, dead letters); `keys`: the
//!   parked ordering keys (`keys parked`, `keys skip`).
//! - [`bench`](mod@bench): the server's side of `conveyor bench <workload>` (its tracing and
//!   the ingest workload's in-process server); the command is [`conveyor_bench::run`].

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use conveyor_handlers::PipelineStore;

mod admin;
mod api_error;
mod app;
mod auth;
pub mod bench;
mod cache;
pub mod config;
mod dashboard;
pub mod database;
mod http;
mod ingest;
mod keys;
mod lookup;
mod openapi;
mod outage;
mod prometheus;
mod routes;
mod serve;
mod settings;
mod state;
mod subscriptions;
pub mod telemetry;
mod workers;

pub use database::SQLITE_SERVE_CONNECTIONS;
pub use http::HttpLimits;
pub use ingest::{Durability, LogConfig};
pub use serve::{shutdown_signal, Server};
pub use settings::{Limits, Settings};

use config::{Cli, Command, RollupCommand};
use database::{Location, SERVE_CONNECTIONS};

/// The flag an invalid namespace is reported under.
const NAMESPACE: &str = "--namespace (CONVEYOR_NAMESPACE)";

/// Connections of the one-shot operator commands.
const COMMAND_CONNECTIONS: u32 = 2;

/// Everything `main` does: parse `args` (the program name first), install tracing, run the
/// command, and turn the outcome into an exit code (usage errors, such as a bad flag or an
/// unknown queue, exit 2; failures 1).
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
    if matches!(cli.command, Command::Bench(_)) {
        bench::init_tracing();
    } else {
        telemetry::init();
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error.cause_chain = ?e, error.message = %e, "command failed");
            eprintln!("error: {e:#}");
            if e.downcast_ref::<admin::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Run one parsed command line on the database `--database-url` / `--data-dir` name;
/// `serve` runs until ctrl-c or SIGTERM. `bench` runs on scratch databases of its own (see
/// [`conveyor_bench::run`]).
///
/// `serve` and `migrate` create the embedded database on first run; the other commands
/// refuse a SQLite file that does not exist (an operator in the wrong directory would
/// otherwise read a fresh, empty database).
///
/// # Errors
/// A message naming the flag when the database cannot be reached or a flag is invalid, and
/// any database error.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Bench(args) = cli.command {
        // scratch databases of its own: `--database-url` only names the Postgres server
        return conveyor_bench::run(
            *args,
            &cli.database_url,
            &bench::InProcessServer,
            serve::shutdown_signal(),
        )
        .await;
    }
    let location = Location::from_flags(&cli.database_url, cli.data_dir.as_deref())?;
    let serve = matches!(cli.command, Command::Serve(_));
    let size = match (&location, serve) {
        (_, false) => COMMAND_CONNECTIONS,
        (Location::Postgres(_), true) => SERVE_CONNECTIONS,
        (Location::Sqlite(_), true) => SQLITE_SERVE_CONNECTIONS,
    };
    let outbox_only = matches!(cli.command, Command::Migrate { outbox_only: true });
    match location {
        Location::Postgres(url) if outbox_only => {
            let store = database::open_postgres(&url, size).await?;
            store.migrate().await.context("applying migrations")?;
            println!("outbox migrations applied");
            Ok(())
        }
        Location::Sqlite(path) if outbox_only => {
            // opening applies the outbox's migrations
            database::open_sqlite(&path, size).await?;
            println!("outbox migrations applied");
            Ok(())
        }
        Location::Postgres(url) => {
            let store = database::open_postgres(&url, size).await?;
            execute(
                store.with_namespace(&cli.namespace).context(NAMESPACE)?,
                cli.command,
            )
            .await
        }
        Location::Sqlite(path) => {
            let creates = serve || matches!(cli.command, Command::Migrate { .. });
            if !creates && !path.exists() {
                anyhow::bail!(
                    "no database at {}: `conveyor serve` or `conveyor migrate` creates it \
                     (`conveyor migrate --outbox-only` for one your application uses through \
                     the conveyor library); \
                     give --data-dir (CONVEYOR_DATA_DIR) or --database-url (DATABASE_URL) \
                     for another one",
                    path.display()
                );
            }
            let store = database::open_sqlite(&path, size).await?;
            execute(
                store.with_namespace(&cli.namespace).context(NAMESPACE)?,
                cli.command,
            )
            .await
        }
    }
}

/// Run `command` on `store` (scoped to the `--namespace`).
async fn execute<S: PipelineStore>(store: S, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let settings = Settings::from_args(&args)?;
            Server::bind(store, settings)
                .await?
                .run(shutdown_signal())
                .await
        }
        // `run` applies it before opening a pipeline store
        Command::Migrate { outbox_only: true } => {
            anyhow::bail!("migrate --outbox-only runs before the pipeline store opens")
        }
        Command::Migrate { outbox_only: false } => {
            store.migrate().await.context("applying migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Rollup {
            command: RollupCommand::Rebuild { from, to },
        } => {
            let report = store
                .rebuild_rollups(from, to)
                .await
                .context("rebuilding rollups")?;
            println!(
                "rebuilt the rollups of {} days ({from} to {to}) from {} events",
                report.days, report.events
            );
            Ok(())
        }
        Command::Stats { json } => admin::stats(&store, json).await,
        Command::Pause { queue, force } => admin::set_paused(&store, queue, force, true).await,
        Command::Resume { queue, force } => admin::set_paused(&store, queue, force, false).await,
        Command::DeadLetters {
            queue,
            after,
            limit,
            json,
        } => admin::dead_letters(&store, queue, after, limit, json).await,
        Command::Replay { ids, queue, all } => admin::replay(&store, ids, queue, all).await,
        Command::Cancel { ids, key, reason } => admin::cancel(&store, ids, key, &reason).await,
        Command::Purge { queue, all } => admin::purge(&store, queue, all).await,
        Command::Event { command } => lookup::event(&store, command).await,
        Command::Subscriptions { command } => subscriptions::run(&store, command).await,
        Command::Keys { command } => keys::run(&store, command).await,
        Command::Events { command } => lookup::events(&store, command).await,
        // `run` dispatches it before opening any database
        Command::Bench(_) => anyhow::bail!("bench runs on scratch databases of its own"),
    }
}
