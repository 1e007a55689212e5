//! [`ScratchDatabase`]: a fresh, empty Postgres database that is always dropped, and the
//! sweep that drops those of runs killed outright.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};

use crate::redact::{check_postgres_url, redact_url};

/// The name prefix of every scratch database.
const SCRATCH_PREFIX: &str = "conveyor_bench_";

/// A fresh, empty Postgres database that is always dropped: by [`dispose`](Self::dispose),
/// or, failing that (an error, a panic, a cancelled future such as a ctrl-c), on drop.
///
/// Named `conveyor_bench_<pid>_<random>` (`conveyor_bench_<label>_<pid>_<random>` with a
/// label), so a later run can tell the databases of runs killed outright (SIGKILL) from
/// live ones and drop them; the workloads use it, and so does the `conveyor bench ingest`
/// command for the server it starts.
///
/// # Example
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// let db = conveyor_bench::ScratchDatabase::create("postgres://root@127.0.0.1/postgres", Some("ingest")).await?;
/// let pool = sqlx::PgPool::connect_with(db.connect_options()).await?;
/// // ... use it, then close every pool on it
/// pool.close().await;
/// db.dispose().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ScratchDatabase {
    // boxed: the connect options are large
    guard: Box<DropGuard>,
}

impl ScratchDatabase {
    /// Create the database on the server `admin_url` names (a URL with the right to `CREATE
    /// DATABASE`), after dropping the scratch databases killed runs left behind. `label`
    /// (lowercase letters and digits) goes into the name.
    ///
    /// # Errors
    /// When the URL does not parse, the server cannot be reached or the database cannot be
    /// created; the label is not plain lowercase ASCII.
    pub async fn create(admin_url: &str, label: Option<&str>) -> anyhow::Result<Self> {
        check_postgres_url(admin_url).map_err(|e| {
            anyhow::anyhow!("the Postgres admin URL {}: {e}", redact_url(admin_url))
        })?;
        let admin = PgConnectOptions::from_str(admin_url)
            .context("parsing the Postgres admin URL")?
            .disable_statement_logging();
        let prefix = match label {
            Some(label) => {
                anyhow::ensure!(
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                    "a scratch database label is lowercase letters and digits, not {label:?}"
                );
                format!("{SCRATCH_PREFIX}{label}_")
            }
            None => SCRATCH_PREFIX.to_owned(),
        };
        let name = format!("{prefix}{}_{:08x}", std::process::id(), fastrand::u32(..));
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .with_context(|| format!("connecting to {}", redact_url(admin_url)))?;
        sweep_stale(&mut conn).await;
        sqlx::query(&format!("create database \"{name}\""))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
        conn.close().await.ok();
        Ok(Self {
            guard: Box::new(DropGuard {
                admin,
                name,
                armed: true,
            }),
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.guard.name
    }

    /// Options that connect to the database (the admin URL's, with the database swapped).
    pub fn connect_options(&self) -> PgConnectOptions {
        self.guard.admin.clone().database(&self.guard.name)
    }

    /// Drop the database `WITH (FORCE)`, ending the sessions still on it. Close your pools
    /// first so their connections end cleanly.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the drop.
    pub async fn dispose(mut self) -> anyhow::Result<()> {
        self.guard.armed = false;
        drop_database(&self.guard.admin, &self.guard.name).await
    }
}

/// Drops the scratch database unless disarmed by a regular dispose.
struct DropGuard {
    admin: PgConnectOptions,
    name: String,
    armed: bool,
}

/// Not derived: the connect options' `Debug` shows the password.
impl std::fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropGuard")
            .field("name", &self.name)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // a failure, a panic or a cancelled workload. Drop it on a runtime of its own, as
        // this may run inside an async context or outside any.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a runtime to drop the scratch database")?
                .block_on(drop_database(&admin, &name))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error.message = %format!("{e:#}"), database = %self.name, "scratch database left behind")
            }
            Err(_) => {
                tracing::warn!(database = %self.name, "scratch database left behind (dropping it panicked)")
            }
        }
    }
}

/// Drop scratch databases left behind by runs killed outright (SIGKILL, a closed terminal):
/// named for a process that no longer runs on this machine, and with no session open, so
/// a live run elsewhere (same pid, other host) is never touched. Best effort: Linux only,
/// errors ignored.
async fn sweep_stale(conn: &mut PgConnection) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let candidates: Vec<String> = sqlx::query_scalar(
        "select datname from pg_database d where datname like 'conveyor\\_bench\\_%' \
         and not exists (select 1 from pg_stat_activity a where a.datname = d.datname)",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in candidates {
        // conveyor_bench_[<label>_]<pid>_<random>: the pid is the second segment from the end
        let pid = name
            .strip_prefix(SCRATCH_PREFIX)
            .and_then(|rest| rest.rsplit('_').nth(1))
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // without FORCE: a database someone connected to meanwhile stays
        match sqlx::query(&format!("drop database if exists \"{name}\""))
            .execute(&mut *conn)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "dropped a stale scratch database"),
            Err(e) => {
                tracing::debug!(database = %name, error.message = %e, "stale scratch database kept")
            }
        }
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(admin)
        .await
        .context("connecting to drop the scratch database")?;
    sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    conn.close().await.ok();
    Ok(())
}
