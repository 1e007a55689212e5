//! [`sqlite`]: a [`SqliteStore`] on a temporary file, for tests.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::store::sqlite::SqliteStore;

/// A [`SqliteStore`] on a file in a fresh temporary directory, removed with the directory
/// when this drops. Derefs to the store: pass `&*db` where a `&S: Store` is wanted.
#[derive(Debug)]
pub struct TempSqlite {
    store: SqliteStore,
    dir: PathBuf,
}

impl TempSqlite {
    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.dir.join("conveyor.db")
    }

    /// The temporary directory holding the database file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Deref for TempSqlite {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        // best effort: a leftover directory in the temp dir harms nothing
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A migrated [`SqliteStore`] on a new temporary file (see [`TempSqlite`]).
///
/// # Errors
/// [`Error::Database`](crate::Error::Database) when the temporary directory or the file
/// cannot be created; as [`SqliteStore::open`] otherwise.
pub async fn sqlite() -> Result<TempSqlite> {
    let dir = std::env::temp_dir().join(format!(
        "conveyor-test-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&dir).map_err(|e| crate::Error::Database(sqlx::Error::Io(e)))?;
    let store = match SqliteStore::open(dir.join("conveyor.db")).await {
        Ok(store) => store,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    Ok(TempSqlite { store, dir })
}
