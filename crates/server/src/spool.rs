//! The local write-ahead spool (the brief's ring buffer): where accepted batches wait while
//! the database cannot take them, so the API keeps answering 202 through an outage.
//!
//! One file per spooled request, written to a temporary name, fsync'd, renamed into place
//! and the directory fsync'd: a file either exists whole or not at all, so a crash mid-write
//! loses nothing that was acknowledged (the 202 is sent only after [`Spool::append`]
//! returns). [`Spool::forward`] publishes the files oldest first and deletes each one only
//! after its publish committed. A crash between the commit and the delete publishes the file
//! again; every message carries an idempotency key derived from the file name, and every
//! backend deduplicates on `(namespace, event_id, timestamp)`, so nothing lands twice.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conveyor::{Message, Store};
use conveyor_handlers::EventsReceived;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SUFFIX: &str = ".spool.json";
/// Where files that cannot be parsed are moved, so they are kept for an operator, never dropped.
const CORRUPT_DIR: &str = "corrupt";
/// How long forwarding waits after a failed publish before trying again.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// A directory of fsync'd batch files, forwarded into the outbox when the database is back.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    pending: AtomicU64,
    seq: AtomicU64,
    appended: Arc<Notify>,
}

impl Spool {
    /// Open (creating) the spool directory and count the files already waiting in it.
    ///
    /// # Errors
    /// When the directory cannot be created or read.
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let spool = Spool {
            dir: dir.to_path_buf(),
            pending: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            appended: Arc::new(Notify::new()),
        };
        let waiting = spool.files()?.len() as u64;
        spool.pending.store(waiting, Ordering::Relaxed);
        if waiting > 0 {
            tracing::warn!(spool.dir = %dir.display(), spool.pending = waiting, "spool holds batches from an earlier run; forwarding them");
        }
        Ok(spool)
    }

    /// Durably append `batches` (fsync'd before this returns). Called by the ingestion
    /// route when publishing to the outbox failed; an `Err` means the API must answer 503.
    ///
    /// # Errors
    /// When the spool cannot be written.
    pub async fn append(&self, batches: &[EventsReceived]) -> std::io::Result<()> {
        let body = serde_json::to_vec(batches).map_err(std::io::Error::other)?;
        let name = format!(
            "{:020}-{:010}-{}{SUFFIX}",
            chrono::Utc::now().timestamp_micros(),
            self.seq.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        );
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_durably(&dir, &name, &body))
            .await
            .map_err(std::io::Error::other)??;
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.appended.notify_one();
        Ok(())
    }

    /// Batch files waiting in the spool.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Forward spooled batches into the outbox, oldest first, until `shutdown` fires; runs
    /// for the server's lifetime. A publish that fails for an outage is retried after a second;
    /// a file that cannot be parsed, or whose rows the database refuses, is moved to
    /// `corrupt/` and logged as an error (kept for an operator, never dropped).
    pub async fn forward<S: Store>(&self, store: S, shutdown: CancellationToken) {
        loop {
            match self.forward_once(&store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(spool.forwarded = n, "forwarded spooled batches"),
                Err(e) => {
                    tracing::warn!(error.message = %e, spool.pending = self.pending(), "spool forwarding failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(RETRY_DELAY) => continue,
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.appended.notified() => {}
                // also rescan now and then: files may be dropped in by an operator
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

    /// Publish every file present now, oldest first; returns how many were forwarded.
    ///
    /// # Errors
    /// The first publish or file-system error; files before it stay forwarded.
    pub async fn forward_once<S: Store>(&self, store: &S) -> anyhow::Result<usize> {
        let mut forwarded = 0;
        for path in self.files()? {
            let name = file_name(&path);
            let bytes = tokio::fs::read(&path).await?;
            let batches: Vec<EventsReceived> = match serde_json::from_slice(&bytes) {
                Ok(b) => b,
                Err(e) => {
                    self.quarantine(&path, &name, &e).await?;
                    continue;
                }
            };
            let fairness: Vec<String> = batches.iter().map(|b| b.namespace.clone()).collect();
            let msgs = batches
                .into_iter()
                .zip(fairness)
                .enumerate()
                .map(|(i, (b, ns))| {
                    Message::new(b)
                        .fairness_key(ns)
                        .idempotency_key(format!("spool:{name}:{i}"))
                });
            match store.publish_batch(msgs).await {
                Ok(_) => tokio::fs::remove_file(&path).await?,
                // the database is up but refuses these rows: retrying would block the spool
                Err(e) if !crate::outage::is_store_outage(&e) => {
                    self.quarantine(&path, &name, &e).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            self.pending.fetch_sub(1, Ordering::Relaxed);
            forwarded += 1;
        }
        Ok(forwarded)
    }

    async fn quarantine(
        &self,
        path: &Path,
        name: &str,
        error: &(dyn std::fmt::Display + Sync),
    ) -> std::io::Result<()> {
        let corrupt = self.dir.join(CORRUPT_DIR);
        tokio::fs::create_dir_all(&corrupt).await?;
        tokio::fs::rename(path, corrupt.join(name)).await?;
        self.pending.fetch_sub(1, Ordering::Relaxed);
        tracing::error!(
            spool.file = %corrupt.join(name).display(),
            error.message = %error,
            "spool file cannot be parsed or is refused by the database; moved aside for an operator"
        );
        Ok(())
    }

    /// The spool files, oldest first (names start with a zero-padded timestamp).
    fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && file_name(p).ends_with(SUFFIX))
            .collect();
        files.sort();
        Ok(files)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Write `body` to `dir/name` so that it exists whole or not at all, and survives a crash.
fn write_durably(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("conveyor-spool-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn batch(n: usize) -> EventsReceived {
        let timestamp = chrono::Utc::now();
        let attributes = serde_json::Map::new();
        EventsReceived {
            namespace: "t".into(),
            request_id: format!("r{n}"),
            events: vec![conveyor_handlers::IngestedEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: "e".into(),
                actor_id: "a".into(),
                source: "s".into(),
                timestamp,
                attributes,
            }],
        }
    }

    #[tokio::test]
    async fn appended_files_survive_reopening_in_order() {
        let dir = temp_dir();
        let spool = Spool::open(&dir).unwrap();
        spool.append(&[batch(1)]).await.unwrap();
        spool.append(&[batch(2), batch(3)]).await.unwrap();
        assert_eq!(spool.pending(), 2);

        let reopened = Spool::open(&dir).unwrap();
        assert_eq!(reopened.pending(), 2);
        let files = reopened.files().unwrap();
        let first: Vec<EventsReceived> =
            serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        assert_eq!(first[0].request_id, "r1");
        // no temporary files are left behind
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn append_fails_when_the_directory_is_gone() {
        let dir = temp_dir();
        let spool = Spool::open(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(spool.append(&[batch(1)]).await.is_err());
        assert_eq!(spool.pending(), 0);
    }
}
