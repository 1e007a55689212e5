//! The `conveyor` binary's library: configuration, telemetry and the operator commands.
//!
//! # Layout
//! - [`config`]: the clap command line (flags with `CONVEYOR_*` env fallbacks).
//! - [`telemetry`]: the tracing subscriber, installed once.
//! - `admin`: the operator commands (stats, pause/resume, dead letters).

use anyhow::Context as _;
use conveyor::PgStore;
use sqlx::postgres::PgPoolOptions;

mod admin;
pub mod config;
pub mod telemetry;

use config::{Cli, Command};

/// Run one parsed command line.
///
/// # Errors
/// A message naming the flag when the database cannot be reached, and any database error.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.database_url.is_empty() {
        anyhow::bail!("--database-url (or DATABASE_URL) is required: a postgres:// URL");
    }
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(5))
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
        Command::Migrate => {
            conveyor::MIGRATOR
                .run(store.pool())
                .await
                .context("applying migrations")?;
            println!("migrations applied");
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
