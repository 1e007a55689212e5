//! What every [`SqliteStore`](super::SqliteStore) on one database file in this process
//! shares: the write lock and the wake-up channel.
//!
//! SQLite has one writer at a time and no LISTEN/NOTIFY. Writers of this process queue on
//! an async mutex (first come, first served) instead of spinning in SQLite's busy handler,
//! so only another process ever meets `SQLITE_BUSY`; and wake-ups travel over a broadcast
//! channel, sent after the commit that made the work visible. Another process sharing the
//! file is not woken: its workers find the work at their poll interval.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::{broadcast, OwnedMutexGuard};

use crate::error::{Error, Result};
use crate::event::Queue;
use crate::store::Wake;

/// Wake-ups buffered per subscriber before it lags (and is woken for everything).
const WAKE_BUFFER: usize = 1024;

/// The shared state of one database file.
#[derive(Debug)]
pub(super) struct Hub {
    write: Arc<tokio::sync::Mutex<()>>,
    wakes: broadcast::Sender<(Arc<str>, Queue)>,
    /// How long a writer waits for the write lock before failing, like `busy_timeout`.
    pub(super) lock_timeout: Duration,
}

/// The write lock, held for the whole of one write transaction.
pub(super) type WriteGuard = OwnedMutexGuard<()>;

impl Hub {
    /// The hub of `file` (shared with every store of this process on the same file), or a
    /// private one for an in-memory database (`file` is `None`).
    pub(super) fn of(file: Option<&Path>, lock_timeout: Duration) -> Arc<Hub> {
        let new = || {
            Arc::new(Hub {
                write: Arc::new(tokio::sync::Mutex::new(())),
                wakes: broadcast::channel(WAKE_BUFFER).0,
                lock_timeout,
            })
        };
        let Some(file) = file else { return new() };
        let key = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        static HUBS: OnceLock<Mutex<HashMap<PathBuf, Weak<Hub>>>> = OnceLock::new();
        let mut hubs = HUBS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hubs.retain(|_, hub| hub.strong_count() > 0);
        if let Some(hub) = hubs.get(&key).and_then(Weak::upgrade) {
            return hub;
        }
        let hub = new();
        hubs.insert(key, Arc::downgrade(&hub));
        hub
    }

    /// Take the write lock, waiting at most `lock_timeout`.
    ///
    /// # Errors
    /// [`Error::Database`] (`database is locked`) when the lock is not free in time: a
    /// transaction is held open somewhere, maybe by the caller itself.
    pub(super) async fn lock(&self) -> Result<WriteGuard> {
        tokio::time::timeout(self.lock_timeout, self.write.clone().lock_owned())
            .await
            .map_err(|_| {
                Error::Database(sqlx::Error::Protocol(format!(
                    "database is locked: no write lock within {:?} (is a transaction of \
                     this store held open while writing through another?)",
                    self.lock_timeout
                )))
            })
    }

    /// Wake the workers of `queues` in `namespace`, in every store of this process.
    pub(super) fn wake<'q>(
        &self,
        namespace: &Arc<str>,
        queues: impl IntoIterator<Item = &'q Queue>,
    ) {
        for queue in queues {
            // no subscriber is fine: nobody is waiting
            let _ = self.wakes.send((namespace.clone(), queue.clone()));
        }
    }

    /// The wake-ups of `namespace`; [`Wake::All`] after falling behind.
    pub(super) fn stream(&self, namespace: Arc<str>) -> BoxStream<'static, Wake> {
        let rx = self.wakes.subscribe();
        stream::unfold(rx, move |mut rx| {
            let namespace = namespace.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok((ns, queue)) if ns == namespace => {
                            return Some((Wake::Queue(queue), rx))
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            return Some((Wake::All, rx))
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed()
    }
}
