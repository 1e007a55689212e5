//! [`Backend`]: where a workload runs, and the scratch database it creates there and always
//! removes: a fresh Postgres database, or a temp SQLite file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use conveyor::{PgStore, SqliteStore, Store};
use sqlx::postgres::PgPool;
use sqlx::ConnectOptions as _;

use crate::progress::Progress;
use crate::scratch_database::ScratchDatabase;

/// How long disposing waits for the scratch pool's connections to be returned before it
/// drops the database anyway (`WITH (FORCE)` ends them).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The backend a workload runs on. Each run creates its own scratch database there and
/// removes it afterwards, also when the workload fails. Its `Debug` hides the URL's secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// A PostgreSQL server. `admin_url` names any database the user may connect to and
    /// create databases from (e.g. `postgres://root@127.0.0.1:5432/postgres`); each run
    /// creates `conveyor_bench_<pid>_<random>` there and drops it `WITH (FORCE)` at the end;
    /// it also drops those that runs killed outright left behind (their process is gone and
    /// nobody is connected).
    Postgres {
        /// A connection URL with the right to `CREATE DATABASE`.
        admin_url: String,
    },
    /// The embedded SQLite backend, on a temp file removed at the end.
    Sqlite,
}

impl Backend {
    /// The backend's name in reports: `postgres` or `sqlite`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres { admin_url } => f
                .debug_struct("Postgres")
                .field("admin_url", &crate::redact_url(admin_url))
                .finish(),
            Self::Sqlite => f.write_str("Sqlite"),
        }
    }
}

/// A workload's body: what it does on a scratch database's [`Store`], whichever the backend.
pub(crate) trait OnStore {
    /// What the body measured.
    type Output;

    /// Run on `store`, the outbox of `scratch` (for probes and backend-specific SQL).
    async fn run<S: Store>(self, store: S, scratch: &Scratch) -> anyhow::Result<Self::Output>;
}

/// The [`OnStore`] job of a workload that needs only its parameters and progress display
/// (ceiling, latency, soak): each implements it for its own parameter type.
#[derive(Debug)]
pub(crate) struct Job<'a, P> {
    pub(crate) params: &'a P,
    pub(crate) progress: Progress,
}

/// Create a scratch database on `backend` with a pool of `connections`, run `job` on it,
/// and remove it whatever happened. Returns the job's output and the server's
/// [caveats](Scratch::caveats).
pub(crate) async fn on_scratch<J: OnStore>(
    backend: &Backend,
    connections: u32,
    job: J,
) -> anyhow::Result<(J::Output, Vec<String>)> {
    let scratch = Scratch::create(backend, connections).await?;
    let result = match &scratch {
        Scratch::Postgres(db) => job.run(db.store(), &scratch).await,
        Scratch::Sqlite(db) => job.run(db.store(), &scratch).await,
    };
    let caveats = scratch.caveats().await;
    let disposed = scratch.dispose().await;
    let output = result?;
    disposed?;
    Ok((output, caveats?))
}

/// A scratch database with the outbox migrated, removed by [`dispose`](Self::dispose) or,
/// failing that (a panic, a cancelled future), on drop.
#[derive(Debug)]
pub(crate) enum Scratch {
    Postgres(PgScratch),
    Sqlite(SqliteScratch),
}

/// Dead-row and size figures of the outbox table, to show bloat over a soak.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bloat {
    /// Postgres: `n_dead_tup` of `conveyor_events`. SQLite: free pages (`freelist_count`).
    pub(crate) dead: Option<i64>,
    /// Postgres: total size of `conveyor_events` with indexes. SQLite: the database file.
    pub(crate) size_mib: f64,
}

impl Scratch {
    /// Create and migrate a scratch database on `backend` with a pool of `connections`.
    async fn create(backend: &Backend, connections: u32) -> anyhow::Result<Self> {
        Ok(match backend {
            Backend::Postgres { admin_url } => {
                Self::Postgres(PgScratch::create(admin_url, connections).await?)
            }
            Backend::Sqlite => Self::Sqlite(SqliteScratch::create(connections).await?),
        })
    }

    /// The backend's name in reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// The outbox's dead rows and size now.
    pub(crate) async fn bloat(&self) -> anyhow::Result<Bloat> {
        match self {
            Self::Postgres(db) => {
                let (dead, bytes): (Option<i64>, i64) = sqlx::query_as(
                    "select (select n_dead_tup from pg_stat_user_tables where relname = 'conveyor_events'), \
                     pg_total_relation_size('conveyor_events')",
                )
                .fetch_one(&db.pool)
                .await
                .context("reading dead tuples of conveyor_events")?;
                Ok(Bloat {
                    dead,
                    size_mib: bytes as f64 / 1_048_576.0,
                })
            }
            Self::Sqlite(db) => {
                let pool = db.store.pool();
                let pragma = |name: &'static str| async move {
                    sqlx::query_scalar::<_, i64>(name).fetch_one(pool).await
                };
                let free = pragma("pragma freelist_count").await?;
                let pages = pragma("pragma page_count").await?;
                let size = pragma("pragma page_size").await?;
                Ok(Bloat {
                    dead: Some(free),
                    size_mib: (pages * size) as f64 / 1_048_576.0,
                })
            }
        }
    }

    /// Server settings that make results incomparable with a production setup, as notes:
    /// Postgres with autovacuum, fsync or synchronous commit off. None on SQLite.
    pub(crate) async fn caveats(&self) -> anyhow::Result<Vec<String>> {
        let Self::Postgres(db) = self else {
            return Ok(Vec::new());
        };
        let (autovacuum, fsync, sync_commit): (String, String, String) = sqlx::query_as(
            "select current_setting('autovacuum'), current_setting('fsync'), \
             current_setting('synchronous_commit')",
        )
        .fetch_one(&db.pool)
        .await
        .context("reading server settings")?;
        let mut caveats = Vec::new();
        if autovacuum == "off" {
            caveats.push(
                "server has autovacuum = off: only the store's own vacuum (dead rows > 10,000) cleans conveyor_events"
                    .to_owned(),
            );
        }
        if fsync == "off" {
            caveats.push("server has fsync = off".to_owned());
        }
        if sync_commit == "off" {
            caveats.push("server has synchronous_commit = off".to_owned());
        }
        Ok(caveats)
    }

    /// Close the pool and remove the database.
    async fn dispose(self) -> anyhow::Result<()> {
        match self {
            Self::Postgres(db) => db.dispose().await,
            Self::Sqlite(db) => db.dispose().await,
        }
    }
}

/// A fresh Postgres database with the outbox migrated.
#[derive(Debug)]
pub(crate) struct PgScratch {
    pool: PgPool,
    database: ScratchDatabase,
}

impl PgScratch {
    /// Create `conveyor_bench_<pid>_<random>` on `admin_url`'s server and migrate it.
    async fn create(admin_url: &str, connections: u32) -> anyhow::Result<Self> {
        // from here on the database is dropped, whatever fails
        let database = ScratchDatabase::create(admin_url, None).await?;
        let pool = PgStore::pool_options()
            .max_connections(connections.max(2))
            .connect_with(database.connect_options())
            .await
            .with_context(|| format!("connecting to {}", database.name()))?;
        conveyor::PgStore::new(pool.clone())
            .migrate()
            .await
            .with_context(|| format!("migrating {}", database.name()))?;
        Ok(Self { pool, database })
    }

    /// The scratch database's pool.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A store on the scratch database, in the default namespace.
    pub(crate) fn store(&self) -> PgStore {
        PgStore::new(self.pool.clone())
    }

    async fn dispose(self) -> anyhow::Result<()> {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.pool.close()).await;
        self.database.dispose().await
    }
}

/// A SQLite store on a fresh temp file.
#[derive(Debug)]
pub(crate) struct SqliteScratch {
    store: SqliteStore,
    path: PathBuf,
    disposed: bool,
}

impl SqliteScratch {
    /// Open `conveyor-bench-<pid>-<random>.db` in the temp dir with the store's settings.
    async fn create(connections: u32) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "conveyor-bench-{}-{:08x}.db",
            std::process::id(),
            fastrand::u32(..)
        ));
        let options = SqliteStore::options(&path).disable_statement_logging();
        match SqliteStore::connect_with(options, connections.max(2)).await {
            Ok(store) => Ok(Self {
                store,
                path,
                disposed: false,
            }),
            Err(e) => {
                remove_files(&path);
                Err(anyhow::Error::new(e).context(format!("opening {}", path.display())))
            }
        }
    }

    /// The store on the scratch file.
    pub(crate) fn store(&self) -> SqliteStore {
        self.store.clone()
    }

    async fn dispose(mut self) -> anyhow::Result<()> {
        self.disposed = true;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.store.pool().close()).await;
        remove_files(&self.path);
        Ok(())
    }
}

impl Drop for SqliteScratch {
    fn drop(&mut self) {
        if !self.disposed {
            remove_files(&self.path);
        }
    }
}

/// Remove the database file and its WAL companions; missing files are fine.
fn remove_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        if let Err(e) = std::fs::remove_file(&file) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error.message = %e, file = ?file, "scratch file left behind");
            }
        }
    }
}
