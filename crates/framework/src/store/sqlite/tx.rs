//! [`SqliteTx`]: a write transaction holding the database's write lock, with the wake-ups
//! of what it published, sent at commit.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::hub::{Hub, WriteGuard};
use crate::error::Result;
use crate::event::Queue;

/// A write transaction on a [`SqliteStore`](crate::SqliteStore): the handler's transaction on SQLite.
///
/// It holds the database's write lock from `begin` until it commits or drops (rolls back),
/// so keep it short: compute first, then write. Derefs to the connection, so
/// `query.execute(&mut *tx)` works as with sqlx's own transactions.
#[derive(Debug)]
pub struct SqliteTx {
    pub(super) tx: Transaction<'static, Sqlite>,
    pub(super) wakes: Vec<Queue>,
    pub(super) hub: Arc<Hub>,
    pub(super) namespace: Arc<str>,
    pub(super) _write: WriteGuard,
}

impl SqliteTx {
    /// Commit, then wake the workers of every queue published to inside the transaction.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the commit fails (nothing is then visible or woken).
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.hub.wake(&self.namespace, &self.wakes);
        Ok(())
    }

    /// Roll back: nothing written in the transaction stays, nobody is woken.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the rollback fails (the connection is then discarded).
    pub async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl Deref for SqliteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}
