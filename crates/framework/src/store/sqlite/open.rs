//! Opening a [`SqliteStore`]: the file, its pragmas, the pool and the outbox migrations.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Hub, SqliteStore, SQLITE_MIGRATOR};
use crate::error::{Error, Result};
use crate::store::DEFAULT_NAMESPACE;

/// How long a writer waits for the database before failing with `database is locked`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl SqliteStore {
    /// Open (creating it if missing) the database file at `path` and apply the outbox
    /// migrations: WAL journal, `synchronous = NORMAL`, a 5 s busy timeout and a pool of 8
    /// connections.
    ///
    /// `synchronous = NORMAL` in WAL mode survives a crash of the process; a power loss may
    /// drop the last commits. Use [`connect_with`](Self::connect_with) with
    /// [`SqliteSynchronous::Full`] when an acknowledged write must survive that too.
    ///
    /// # Errors
    /// [`Error::Database`] when the file cannot be opened or created, [`Error::Migrate`]
    /// when a migration fails.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::connect_with(Self::options(path.as_ref()), 8).await
    }

    /// Open a `sqlite:` URL (`sqlite://path/to/file.db`, `sqlite::memory:`) with
    /// [`open`](Self::open)'s settings; parameters in the URL override them.
    ///
    /// # Errors
    /// [`Error::Config`] for a URL that is not a `sqlite:` URL; otherwise as [`open`](Self::open).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("invalid sqlite url: {e}")))?;
        let options = Self::tune(options);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::connect_with(options, if in_memory { 1 } else { 8 }).await
    }

    /// The options [`open`](Self::open) uses for `path`, to adjust before
    /// [`connect_with`](Self::connect_with).
    pub fn options(path: &Path) -> SqliteConnectOptions {
        Self::tune(SqliteConnectOptions::new().filename(path))
    }

    fn tune(options: SqliteConnectOptions) -> SqliteConnectOptions {
        options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
    }

    /// Open a pool of `max_connections` with `options` as given and apply the outbox
    /// migrations. An in-memory database needs `max_connections = 1` (each connection
    /// would otherwise see its own empty database).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn connect_with(options: SqliteConnectOptions, max_connections: u32) -> Result<Self> {
        let file = options.get_filename().to_path_buf();
        let in_memory = file.as_os_str().is_empty() || file == Path::new(":memory:");
        // sqlx pings a connection as it leaves the pool by default: for SQLite a round trip
        // to the connection's worker thread on every store call, which finds nothing (a
        // file's connection is not closed behind our back; a dead worker fails the query)
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        crate::migrations::run_sqlite(&pool, &SQLITE_MIGRATOR).await?;
        let hub = Hub::of((!in_memory).then_some(file.as_path()), BUSY_TIMEOUT);
        Ok(Self {
            pool,
            namespace: Arc::from(DEFAULT_NAMESPACE),
            hub,
            key_window: crate::store::DEFAULT_IDEMPOTENCY_WINDOW,
            stats: Arc::default(),
        })
    }
}
