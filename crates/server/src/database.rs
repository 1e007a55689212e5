//! Which database a command runs on, and opening it.
//!
//! [`Location::from_flags`] reads `--database-url` and `--data-dir`:
//! - no URL (or an empty one): the embedded SQLite database `conveyor.db` in `--data-dir`
//!   (default `./conveyor-data`, created on first run);
//! - `sqlite://PATH` or `sqlite:PATH`: SQLite at that file (its directory is created);
//! - `postgres://…` or `postgresql://…`: PostgreSQL;
//! - anything else: an error naming `--database-url`.
//!
//! [`open_sqlite`] opens SQLite the way the server needs it: WAL journal and
//! `synchronous = FULL`, because the API answers 202 only after the commit and an
//! acknowledged event must survive a power loss, not only a crash of the process.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use conveyor::{PgStore, SqliteStore};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};

use crate::config::{DATABASE_FILE, DEFAULT_DATA_DIR};

/// Where a command's database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A PostgreSQL server, by URL.
    Postgres(String),
    /// A SQLite database file.
    Sqlite(PathBuf),
}

impl Location {
    /// The database `--database-url` (empty: none) and `--data-dir` name.
    ///
    /// # Errors
    /// A message naming the flag for an unsupported scheme, an in-memory SQLite URL (nothing
    /// acknowledged would survive a restart), an empty `--data-dir`, or both flags at once.
    pub fn from_flags(database_url: &str, data_dir: Option<&Path>) -> anyhow::Result<Location> {
        let url = database_url.trim();
        if url.is_empty() {
            let dir = data_dir.unwrap_or(Path::new(DEFAULT_DATA_DIR));
            if dir.as_os_str().is_empty() {
                anyhow::bail!("--data-dir (CONVEYOR_DATA_DIR) must not be empty");
            }
            return Ok(Location::Sqlite(dir.join(DATABASE_FILE)));
        }
        if data_dir.is_some() {
            anyhow::bail!(
                "--data-dir (CONVEYOR_DATA_DIR) and --database-url (DATABASE_URL) are both given: \
                 --data-dir is for the embedded database when no URL is given; drop one"
            );
        }
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Ok(Location::Postgres(url.to_owned())),
            Some("sqlite") => sqlite_file(url).map(Location::Sqlite),
            _ => anyhow::bail!(
                "--database-url (DATABASE_URL): unsupported URL {}: give a postgres:// or \
                 sqlite:// URL, or none for the embedded database in --data-dir ({DEFAULT_DATA_DIR})",
                redact(url)
            ),
        }
    }

    /// The location for messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Postgres(url) => redact(url),
            Location::Sqlite(path) => path.display().to_string(),
        }
    }
}

/// The file a `sqlite:` URL names. Its query parameters are ignored (with a warning): the
/// server sets the journal, sync and busy settings itself.
fn sqlite_file(url: &str) -> anyhow::Result<PathBuf> {
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("--database-url (DATABASE_URL): invalid sqlite URL {url}"))?;
    let file = options.get_filename();
    if url.contains(":memory:") || url.contains("mode=memory") || file.as_os_str().is_empty() {
        anyhow::bail!(
            "--database-url (DATABASE_URL): an in-memory SQLite database loses every \
             acknowledged event on restart; give a file, such as sqlite://conveyor.db"
        );
    }
    if url.contains('?') {
        tracing::warn!(%url, "sqlite URL parameters are ignored: the server sets WAL, synchronous = FULL and the busy timeout itself");
    }
    Ok(file.to_path_buf())
}

/// Connect to PostgreSQL with a pool of `max_connections`.
///
/// # Errors
/// A message naming `--database-url` (the password hidden) when the server cannot be reached.
pub async fn open_postgres(url: &str, max_connections: u32) -> anyhow::Result<PgStore> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| {
            format!(
                "--database-url (DATABASE_URL): cannot connect to {}",
                redact(url)
            )
        })?;
    tracing::info!(backend = "postgres", url = %redact(url), "database");
    Ok(PgStore::new(pool))
}

/// Open (creating the file and its directory if missing) the SQLite database at `path` with
/// a pool of `max_connections`: WAL, `synchronous = FULL`, the outbox migrations applied.
///
/// # Errors
/// A message naming the path when the directory or the file cannot be created or opened.
pub async fn open_sqlite(path: &Path, max_connections: u32) -> anyhow::Result<SqliteStore> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the database directory {}", dir.display()))?;
    }
    let options = SqliteStore::options(path).synchronous(SqliteSynchronous::Full);
    let store = SqliteStore::connect_with(options, max_connections)
        .await
        .with_context(|| format!("opening the SQLite database {}", path.display()))?;
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    tracing::info!(backend = "sqlite", path = %shown.display(), synchronous = "full", "database");
    Ok(store)
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
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn no_url_is_the_embedded_database_in_the_data_dir() {
        assert_eq!(
            Location::from_flags("", None).unwrap(),
            Location::Sqlite(PathBuf::from("./conveyor-data/conveyor.db"))
        );
        assert_eq!(
            Location::from_flags(" ", Some(Path::new("/var/lib/conveyor"))).unwrap(),
            Location::Sqlite(PathBuf::from("/var/lib/conveyor/conveyor.db"))
        );
    }

    #[test]
    fn urls_pick_the_backend_by_scheme() {
        for url in ["postgres://u@h/db", "postgresql://h/db", "POSTGRES://h/db"] {
            assert!(matches!(
                Location::from_flags(url, None).unwrap(),
                Location::Postgres(_)
            ));
        }
        for (url, file) in [
            ("sqlite://data/c.db", "data/c.db"),
            ("sqlite:c.db", "c.db"),
            ("sqlite:///tmp/c.db", "/tmp/c.db"),
        ] {
            assert_eq!(
                Location::from_flags(url, None).unwrap(),
                Location::Sqlite(PathBuf::from(file)),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_locations_name_the_flag() {
        for (url, dir, flag) in [
            ("mysql://u:secret@h/db", None, "--database-url"),
            ("conveyor.db", None, "--database-url"),
            ("sqlite::memory:", None, "--database-url"),
            ("", Some(""), "--data-dir"),
            ("postgres://h/db", Some("d"), "--data-dir"),
        ] {
            let err = Location::from_flags(url, dir.map(Path::new)).unwrap_err();
            let err = format!("{err:#}");
            assert!(err.contains(flag), "{url}: {err}");
            assert!(!err.contains("secret"), "password leaked: {err}");
        }
    }
}
