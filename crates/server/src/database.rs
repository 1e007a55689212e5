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
//! acknowledged event must survive a power loss, not only a crash of the process. The
//! database holds every tenant's events: on unix a directory it creates is `0700` and the
//! database file and its `-wal` / `-shm` companions `0600`.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use conveyor::{PgStore, SqliteStore};
use conveyor_bench::{check_postgres_url, redact_url as redact};
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};

use crate::config::{DATABASE_FILE, DEFAULT_DATA_DIR};

/// Postgres connections `serve` opens: the workers' 8 plus the pool's reserve of 4, and the
/// rest for the API.
pub(crate) const SERVE_CONNECTIONS: u32 = 30;

/// SQLite connections `serve` opens: the same 12 for the workers, and 8 for the API's reads
/// (writes take turns behind one lock anyway, and a connection costs a page cache).
pub const SQLITE_SERVE_CONNECTIONS: u32 = 20;

/// Where a command's database is. Its `Debug` hides the URL's secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A PostgreSQL server, by URL.
    Postgres(String),
    /// A SQLite database file.
    Sqlite(PathBuf),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Postgres(url) => f.debug_tuple("Postgres").field(&redact(url)).finish(),
            Location::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
        }
    }
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
            Some("postgres" | "postgresql") => match check_postgres_url(url) {
                Ok(()) => Ok(Location::Postgres(url.to_owned())),
                Err(e) => anyhow::bail!("--database-url (DATABASE_URL) {}: {e}", redact(url)),
            },
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
    let options = SqliteConnectOptions::from_str(url).with_context(|| {
        format!(
            "--database-url (DATABASE_URL): invalid sqlite URL {}",
            redact(url)
        )
    })?;
    let file = options.get_filename();
    if url.contains(":memory:") || url.contains("mode=memory") || file.as_os_str().is_empty() {
        anyhow::bail!(
            "--database-url (DATABASE_URL): an in-memory SQLite database loses every \
             acknowledged event on restart; give a file, such as sqlite://conveyor.db"
        );
    }
    if url.contains('?') {
        tracing::warn!(url = %redact(url), "sqlite URL parameters are ignored: the server sets WAL, synchronous = FULL and the busy timeout itself");
    }
    Ok(file.to_path_buf())
}

/// Connect to PostgreSQL with a pool of `max_connections`.
///
/// # Errors
/// A message naming `--database-url` (the password hidden) when the server cannot be reached.
pub async fn open_postgres(url: &str, max_connections: u32) -> anyhow::Result<PgStore> {
    let pool = PgStore::pool_options()
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
/// On unix, directories it creates are `0700`, the file is created `0600` (SQLite gives the
/// `-wal` and `-shm` files the same mode), and an existing file (or companion) readable by
/// others is restricted to `0600`.
///
/// # Errors
/// A message naming the path when the directory or the file cannot be created or opened.
pub async fn open_sqlite(path: &Path, max_connections: u32) -> anyhow::Result<SqliteStore> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private::create_dir_all(dir)
            .with_context(|| format!("creating the database directory {}", dir.display()))?;
    }
    private::create_file(path)
        .with_context(|| format!("creating the SQLite database {}", path.display()))?;
    let options = SqliteStore::options(path).synchronous(SqliteSynchronous::Full);
    let store = SqliteStore::connect_with(options, max_connections)
        .await
        .with_context(|| format!("opening the SQLite database {}", path.display()))?;
    private::restrict(path);
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    tracing::info!(backend = "sqlite", path = %shown.display(), synchronous = "full", "database");
    Ok(store)
}

/// Owner-only directories and files for the database (no-ops off unix).
mod private {
    use std::path::Path;

    /// Create `dir` and its missing parents, `0700`; existing ones are left as they are.
    pub(super) fn create_dir_all(dir: &Path) -> std::io::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)
    }

    /// Create `file` empty with mode `0600` unless it exists (SQLite takes an empty file as
    /// an empty database), so it is never readable by others, not even for a moment.
    pub(super) fn create_file(file: &Path) -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(file) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Restrict `file` and its `-wal` / `-shm` companions to `0600` when others may read
    /// them (files of an older version, or made by hand); a failure is a warning.
    pub(super) fn restrict(file: &Path) {
        #[cfg(unix)]
        for suffix in ["", "-wal", "-shm"] {
            use std::os::unix::fs::PermissionsExt as _;

            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            let path = Path::new(&name);
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            if meta.permissions().mode() & 0o077 == 0 {
                continue;
            }
            let private = std::fs::Permissions::from_mode(0o600);
            if let Err(e) = std::fs::set_permissions(path, private) {
                tracing::warn!(path = %path.display(), error.message = %e, "the database file stays readable by others");
            }
        }
        #[cfg(not(unix))]
        let _ = file;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact("postgres://u@h/db?password=secret"),
            "postgres://u@h/db?password=***"
        );
    }

    #[test]
    fn no_form_of_the_password_is_shown() {
        for url in [
            "postgres://u:secret@h/db",
            "postgres://u@h/db?password=secret",
            "postgres://u@h/db?Password=secret",
            "postgres://u@h/db?sslpassword=secret",
        ] {
            let location = Location::from_flags(url, None);
            let shown = match &location {
                Ok(location) => format!("{} {location:?}", location.describe()),
                Err(e) => format!("{e:#}"),
            };
            assert!(!shown.contains("secret"), "{url}: {shown}");
        }
        // sqlx would log the value of a parameter it does not know: refused up front
        let err = Location::from_flags("postgres://u@h/db?PASSWORD=secret", None).unwrap_err();
        assert!(format!("{err:#}").contains("--database-url"), "{err:#}");
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

    #[cfg(unix)]
    #[tokio::test]
    async fn the_embedded_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;

        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = std::env::temp_dir().join(format!("conveyor-perm-{}", uuid::Uuid::new_v4()));
        let file = root.join("data/conveyor.db");
        let store = open_sqlite(&file, 2).await.unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("data")), 0o700);
        for name in ["conveyor.db", "conveyor.db-wal", "conveyor.db-shm"] {
            assert_eq!(mode(&root.join("data").join(name)), 0o600, "{name}");
        }
        store.pool().close().await;

        // a file an older version left readable by others is restricted on open
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = open_sqlite(&file, 2).await.unwrap();
        assert_eq!(mode(&file), 0o600);
        store.pool().close().await;
        std::fs::remove_dir_all(root).ok();
    }
}
