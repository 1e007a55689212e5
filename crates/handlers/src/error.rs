//! [`Error`]: what the pipeline's handlers and read queries can fail with.

use crate::embedder::EmbedError;

/// An error of the pipeline crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed or refused a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Publishing to the outbox failed (its payload, or the database).
    #[error("publishing failed: {0}")]
    Publish(#[from] conveyor::Error),
    /// The embedder could not embed a text.
    #[error("embedding failed: {0}")]
    Embed(#[from] EmbedError),
    /// A query's parameters are out of bounds; the message names the parameter.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A search ran past its deadline (the `Duration`) and the database cancelled its
    /// statement: Postgres' `statement_timeout`, SQLite's progress handler.
    #[error("the search took longer than {0:?} and was cancelled")]
    SearchTimeout(std::time::Duration),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
