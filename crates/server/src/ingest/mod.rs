//! The ingestion log: the always-on, local write-ahead log between the API and the database.
//!
//! `POST /v1/events/bulk` validates a request, encodes it as one frame ([`frame`]) and
//! [`appends`](IngestLog::append) it; the writer thread ([`writer`]) group-commits frames to
//! numbered segment files ([`segment`]) with one `fdatasync` per group, and the API answers
//! 202 only after that. The request path never touches the database, so its latency does not
//! change while the database is slow or down. The [`publisher`] moves frames into the store
//! in large batches (the raw-first [`accept`](conveyor_handlers::PipelineStore::accept)
//! transaction) and advances the `published` cursor; a cleanup deletes published segments by
//! age and total size, never an unpublished one.
//!
//! Crash safety: a frame is acknowledged only once durable; a torn tail (a frame cut short
//! by a crash before its fsync, never acknowledged) fails its checksum and is cut off when the
//! log is opened. Frames after the cursor are published again after a restart; every backend
//! deduplicates on `(namespace, event_id, timestamp)`, so each lands exactly once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot, watch};

mod budget;
pub(crate) mod frame;
mod legacy;
pub(crate) mod publisher;
pub(crate) mod segment;
mod writer;

pub(crate) use budget::{Budget, BudgetSpent};
use frame::Frame;
pub(crate) use legacy::import as import_legacy_spool;
use segment::Position;

/// How the log makes an append durable before the 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// `fdatasync` every group before answering: survives a power loss. The default.
    Fsync,
    /// Written to the OS only: survives a crash of the process (kill -9), not of the machine.
    Os,
}

/// The ingestion log's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The log's directory (created 0700). Defaults to `./conveyor-log`.
    pub dir: PathBuf,
    /// Unpublished bytes past which the API answers 503 with `Retry-After`. Defaults to 1 GiB.
    pub max_unpublished_bytes: u64,
    /// Unpublished events past which the API answers 503 with `Retry-After`. Defaults to
    /// 10,000,000.
    pub max_unpublished_events: u64,
    /// How long published segments are kept. Defaults to 1 hour.
    pub retention: Duration,
    /// Most bytes of published segments kept; older ones are deleted first. Defaults to 256 MiB.
    pub retained_bytes: u64,
    /// Fsync before the 202, or leave it to the OS. Defaults to [`Durability::Fsync`].
    pub durability: Durability,
    /// A segment file is closed and a new one started past this size. Defaults to 64 MiB.
    pub segment_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./conveyor-log"),
            max_unpublished_bytes: 1 << 30,
            max_unpublished_events: 10_000_000,
            retention: Duration::from_secs(3600),
            retained_bytes: 256 << 20,
            durability: Durability::Fsync,
            segment_bytes: 64 << 20,
        }
    }
}

/// Why an append was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    /// Unpublished entries are at the configured capacity.
    #[error("the ingestion log is full ({0}); retry later")]
    Full(String),
    /// The log cannot write (disk full, I/O error).
    #[error("the ingestion log cannot write: {0}")]
    Write(String),
}

/// State shared by the API, the writer thread, the publisher and health.
#[derive(Debug)]
pub(crate) struct Shared {
    durable: watch::Sender<Position>,
    unpublished_bytes: AtomicU64,
    unpublished_events: AtomicU64,
    /// Append time (µs) of the oldest entry being published; 0 when caught up.
    oldest_unpublished_at: AtomicI64,
    /// The published cursor, also saved in the `published` file.
    published: Mutex<Position>,
    write_error: Mutex<Option<String>>,
    writer_panics: AtomicU64,
    publisher_restarts: AtomicU64,
    /// The publisher's last database failure, cleared when a publish succeeds.
    publish_error: Mutex<Option<String>>,
    rejected_entries: AtomicU64,
}

impl Shared {
    fn appended(&self, bytes: u64, events: u64, end: Position) {
        self.unpublished_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.unpublished_events.fetch_add(events, Ordering::Relaxed);
        *self.write_error.lock().expect("lock") = None;
        self.durable.send_replace(end);
    }

    fn write_failed(&self, message: &str) {
        *self.write_error.lock().expect("lock") = Some(message.to_owned());
    }

    fn count_writer_panic(&self) {
        self.writer_panics.fetch_add(1, Ordering::Relaxed);
    }

    fn segment_started(&self, n: u64) {
        tracing::debug!(segment = n, "ingestion log segment started");
    }
}

/// The handle of the ingestion log: append from the API, read its state for health. Cheap
/// to clone.
#[derive(Debug, Clone)]
pub(crate) struct IngestLog {
    appends: mpsc::Sender<writer::Append>,
    shared: Arc<Shared>,
    config: Arc<LogConfig>,
}

/// What `/healthz/detailed` shows of the log.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LogStatus {
    pub(crate) unpublished_events: u64,
    pub(crate) unpublished_bytes: u64,
    /// Seconds the oldest unpublished entry has waited.
    pub(crate) lag_secs: f64,
    /// Fraction of the capacity in use (the larger of bytes and events).
    pub(crate) fill: f64,
    pub(crate) write_error: Option<String>,
    pub(crate) publish_error: Option<String>,
    pub(crate) writer_panics: u64,
    pub(crate) publisher_restarts: u64,
    pub(crate) rejected_entries: u64,
}

impl IngestLog {
    /// Open (creating) the log in `config.dir`: cut off a torn tail, count what is not yet
    /// published, and start the writer thread. Returns the handle and the publisher's
    /// starting point.
    ///
    /// # Errors
    /// When the directory or its files cannot be created, read or repaired.
    pub(crate) fn open(config: LogConfig) -> anyhow::Result<IngestLog> {
        let dir = config.dir.clone();
        create_private_dir(&dir)
            .with_context(|| format!("creating the ingestion log directory {}", dir.display()))?;
        let segments = segment::list(&dir)?;
        let cursor = segment::load_cursor(&dir)?.unwrap_or(Position {
            segment: segments.first().copied().unwrap_or(1),
            offset: 0,
        });
        let (active, end) = match segments.last() {
            None => {
                let file = segment::create(&dir, cursor.segment)?;
                segment::sync_dir(&dir)?;
                (
                    writer::Active {
                        number: cursor.segment,
                        file,
                        len: 0,
                        poisoned: false,
                    },
                    Position {
                        segment: cursor.segment,
                        offset: 0,
                    },
                )
            }
            Some(&last) => {
                let scan = segment::scan(&dir, last, 0)?;
                let file = segment::open_append(&dir, last)?;
                if scan.file_len > scan.valid_end {
                    tracing::warn!(
                        segment = last,
                        bytes = scan.file_len - scan.valid_end,
                        "cutting off the torn tail of the ingestion log (never acknowledged)"
                    );
                    file.set_len(scan.valid_end)?;
                    file.sync_all()?;
                }
                let end = Position {
                    segment: last,
                    offset: scan.valid_end,
                };
                (
                    writer::Active {
                        number: last,
                        file,
                        len: scan.valid_end,
                        poisoned: false,
                    },
                    end,
                )
            }
        };
        let (mut bytes, mut events) = (0u64, 0u64);
        for &n in segments.iter().filter(|&&n| n >= cursor.segment) {
            let from = if n == cursor.segment {
                cursor.offset
            } else {
                0
            };
            let scan = segment::scan(&dir, n, from)?;
            bytes += scan.valid_end.saturating_sub(from);
            events += scan.events;
        }
        if events > 0 {
            tracing::warn!(
                events,
                bytes,
                "the ingestion log holds unpublished events from an earlier run; publishing them"
            );
        }
        let shared = Arc::new(Shared {
            durable: watch::Sender::new(end),
            unpublished_bytes: AtomicU64::new(bytes),
            unpublished_events: AtomicU64::new(events),
            oldest_unpublished_at: AtomicI64::new(0),
            published: Mutex::new(cursor),
            write_error: Mutex::new(None),
            writer_panics: AtomicU64::new(0),
            publisher_restarts: AtomicU64::new(0),
            publish_error: Mutex::new(None),
            rejected_entries: AtomicU64::new(0),
        });
        let (appends, queue) = mpsc::channel(GROUP_QUEUE);
        let writer = writer::Writer {
            dir: dir.clone(),
            durability: config.durability,
            segment_bytes: config.segment_bytes,
            active,
            shared: shared.clone(),
        };
        std::thread::Builder::new()
            .name("conveyor-log-writer".into())
            .spawn(move || writer.run(queue))
            .context("starting the ingestion log writer")?;
        Ok(IngestLog {
            appends,
            shared,
            config: Arc::new(config),
        })
    }

    /// Durably append one request's frame; returns once it is on disk (the 202 may be sent).
    ///
    /// # Errors
    /// [`AppendError::Full`] past the configured capacity (nothing is dropped: the client
    /// retries), [`AppendError::Write`] when the log cannot write.
    pub(crate) async fn append(&self, frame: Frame) -> Result<(), AppendError> {
        let bytes = self.shared.unpublished_bytes.load(Ordering::Relaxed);
        let events = self.shared.unpublished_events.load(Ordering::Relaxed);
        if bytes + frame.bytes.len() as u64 > self.config.max_unpublished_bytes {
            return Err(AppendError::Full(format!(
                "{bytes} unpublished bytes, capacity {}",
                self.config.max_unpublished_bytes
            )));
        }
        if events + u64::from(frame.events) > self.config.max_unpublished_events {
            return Err(AppendError::Full(format!(
                "{events} unpublished events, capacity {}",
                self.config.max_unpublished_events
            )));
        }
        let (reply, answer) = oneshot::channel();
        self.appends
            .send(writer::Append { frame, reply })
            .await
            .map_err(|_| AppendError::Write("the log writer stopped".into()))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(AppendError::Write(message)),
            Err(_) => Err(AppendError::Write("the log writer stopped".into())),
        }
    }

    /// The log's depth, lag and failures.
    pub(crate) fn status(&self) -> LogStatus {
        let s = &self.shared;
        let unpublished_bytes = s.unpublished_bytes.load(Ordering::Relaxed);
        let unpublished_events = s.unpublished_events.load(Ordering::Relaxed);
        let oldest = s.oldest_unpublished_at.load(Ordering::Relaxed);
        let lag_secs = if oldest == 0 || unpublished_events == 0 {
            0.0
        } else {
            ((chrono::Utc::now().timestamp_micros() - oldest).max(0) as f64) / 1e6
        };
        let fill = (unpublished_bytes as f64 / self.config.max_unpublished_bytes as f64)
            .max(unpublished_events as f64 / self.config.max_unpublished_events as f64);
        LogStatus {
            unpublished_events,
            unpublished_bytes,
            lag_secs,
            fill,
            write_error: s.write_error.lock().expect("lock").clone(),
            publish_error: s.publish_error.lock().expect("lock").clone(),
            writer_panics: s.writer_panics.load(Ordering::Relaxed),
            publisher_restarts: s.publisher_restarts.load(Ordering::Relaxed),
            rejected_entries: s.rejected_entries.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn config(&self) -> &LogConfig {
        &self.config
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// Requests queued for the writer before `append` waits for room.
const GROUP_QUEUE: usize = 8_192;

/// Create `dir` (and its parents) and make it private to its owner (0700 on unix).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
