//! The publisher: moves the log's entries into the store, oldest first, in large batches
//! (one raw-first [`accept`](PipelineStore::accept) transaction each), then advances the
//! `published` cursor and deletes published segments past their retention.
//!
//! - An outage (the database unreachable or failing) is retried with backoff, the batch kept;
//!   the API is not affected.
//! - A batch the database refuses is retried one entry at a time; an entry refused alone is
//!   written to `rejected/` (kept for an operator, never dropped) and the rest go on.
//! - A panic restarts the publisher from the saved cursor (counted in health).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use conveyor_handlers::{Backend, EventsReceived, PipelineStore};
use futures::stream::{FuturesOrdered, StreamExt as _};
use futures::FutureExt as _;
use tokio_util::sync::CancellationToken;

use super::segment::{self, Entry, Position, Read, Reader};
use super::{frame, IngestLog, LogConfig};

/// Most events one accept transaction takes.
const BATCH_EVENTS: u64 = 20_000;
/// Most frame bytes one accept transaction takes.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// How often published segments are checked for deletion while idle.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(30);
const REJECTED_DIR: &str = "rejected";

/// Publish until `shutdown`, restarting after a panic. Unpublished entries stay in the log
/// for the next start.
pub(crate) async fn run<S: PipelineStore>(
    log: IngestLog,
    store: S,
    backends: std::sync::Arc<[Backend]>,
    shutdown: CancellationToken,
) {
    loop {
        let task = tokio::spawn(publish(
            log.clone(),
            store.clone(),
            backends.clone(),
            shutdown.clone(),
        ));
        match task.await {
            Ok(()) => return,
            Err(e) => {
                log.shared()
                    .publisher_restarts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error.message = %e, "ingestion log publisher panicked; restarting it from the saved cursor");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn publish<S: PipelineStore>(
    log: IngestLog,
    store: S,
    backends: std::sync::Arc<[Backend]>,
    shutdown: CancellationToken,
) {
    let shared = log.shared().clone();
    let config = log.config().clone();
    let start = *shared.published.lock().expect("lock");
    let mut reader = Some(Reader::new(&config.dir, start));
    let mut durable = shared.durable.subscribe();
    let mut last_cleanup_segment = 0;
    // batches being accepted, oldest first: up to `ACCEPT_WRITERS` transactions at once (one
    // can run its statements while another commits); the cursor moves in order only
    let writers = S::ACCEPT_WRITERS.max(1);
    let mut in_flight = FuturesOrdered::new();
    // the first append time of each batch in flight, in the same order
    let mut started = std::collections::VecDeque::new();
    loop {
        let end = *durable.borrow_and_update();
        let next = reader.as_ref().expect("reader is back").next;
        if in_flight.len() < writers && next < end {
            let mut r = reader.take().expect("reader is back");
            let (r, read) = tokio::task::spawn_blocking(move || {
                let read = r.read(end, BATCH_EVENTS, BATCH_BYTES);
                (r, read)
            })
            .await
            .expect("reading the log does not panic");
            let next = r.next;
            reader = Some(r);
            match read {
                Ok(Read::Entries(entries)) if entries.is_empty() => {}
                Ok(Read::Entries(entries)) => {
                    let batch = Batch {
                        next,
                        bytes: entries.iter().map(|e| e.header.frame_len()).sum(),
                        events: entries.iter().map(|e| u64::from(e.header.events)).sum(),
                        appended_at: entries[0].header.appended_at,
                    };
                    if in_flight.is_empty() {
                        shared
                            .oldest_unpublished_at
                            .store(batch.appended_at, Ordering::Relaxed);
                    }
                    started.push_back(batch.appended_at);
                    let (log, store, backends, shutdown) = (&log, &store, &backends, &shutdown);
                    in_flight.push_back(
                        async move {
                            store_entries(log, store, backends, entries, shutdown)
                                .await
                                .then_some(batch)
                        }
                        .boxed(),
                    );
                }
                Ok(Read::Damaged { at, skipped }) => {
                    tracing::error!(segment = at.segment, offset = at.offset, bytes = skipped, "ingestion log segment damaged from this offset (a frame fails its checksum); skipping to the next segment");
                    let skip = Batch {
                        next,
                        bytes: 0,
                        events: 0,
                        appended_at: 0,
                    };
                    started.push_back(started.back().copied().unwrap_or(0));
                    in_flight.push_back(futures::future::ready(Some(skip)).boxed());
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "cannot read the ingestion log; retrying");
                    // what is in flight still lands; read again after it
                    while let Some(done) = in_flight.next().await {
                        let Some(batch) = done else { return };
                        advance(&log, batch.next, batch.bytes, batch.events).await;
                    }
                    started.clear();
                    *reader.as_mut().expect("reader is back") =
                        Reader::new(&config.dir, *shared.published.lock().expect("lock"));
                    if sleep_or_stop(&shutdown, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
            continue;
        }
        if in_flight.is_empty() {
            shared.oldest_unpublished_at.store(0, Ordering::Relaxed);
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = durable.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(CLEANUP_INTERVAL) => cleanup_logged(&config, next).await,
            }
            continue;
        }
        let done = tokio::select! {
            done = in_flight.next() => done.expect("not empty"),
            // a new durable end lets the next batch start while these run
            changed = durable.changed(), if in_flight.len() < writers => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        // None: shutdown came first; the cursor stays before this batch
        let Some(batch) = done else { return };
        advance(&log, batch.next, batch.bytes, batch.events).await;
        started.pop_front();
        if let Some(&oldest) = started.front() {
            shared
                .oldest_unpublished_at
                .store(oldest, Ordering::Relaxed);
        }
        if batch.next.segment != last_cleanup_segment {
            last_cleanup_segment = batch.next.segment;
            cleanup_logged(&config, batch.next).await;
        }
    }
}

/// A batch of frames being accepted, and what publishing it moves.
#[derive(Debug, Clone, Copy)]
struct Batch {
    /// The position after its last frame: the cursor once it is stored.
    next: Position,
    bytes: u64,
    events: u64,
    /// When its first frame was appended (µs).
    appended_at: i64,
}

/// Accept `entries` into the store; false when shutdown came first (nothing is lost: the
/// cursor did not move).
async fn store_entries<S: PipelineStore>(
    log: &IngestLog,
    store: &S,
    backends: &[Backend],
    entries: Vec<Entry>,
    shutdown: &CancellationToken,
) -> bool {
    let mut batches = Vec::with_capacity(entries.len());
    let mut positions = Vec::with_capacity(entries.len());
    for entry in entries {
        match frame::decode(&entry.payload) {
            Ok(batch) => {
                batches.push(batch);
                positions.push(entry.at);
            }
            Err(e) => reject(log, entry.at, &e.to_string(), Rejected::Raw(&entry.payload)).await,
        }
    }
    if batches.is_empty() {
        return true;
    }
    let mut delay = Duration::from_millis(50);
    loop {
        match store.accept(backends, &batches).await {
            Ok(_) => {
                *log.shared().publish_error.lock().expect("lock") = None;
                return true;
            }
            Err(e) if is_outage(&e) => {
                tracing::warn!(error.message = %e, "database unavailable: ingestion log publishing waits");
                *log.shared().publish_error.lock().expect("lock") = Some(e.to_string());
                if sleep_or_stop(shutdown, delay).await {
                    return false;
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::warn!(error.message = %e, entries = batches.len(), "the database refused a batch; publishing its entries one by one");
                for (batch, at) in batches.iter().zip(&positions) {
                    loop {
                        match store.accept(backends, std::slice::from_ref(batch)).await {
                            Ok(_) => break,
                            Err(e) if is_outage(&e) => {
                                if sleep_or_stop(shutdown, Duration::from_secs(1)).await {
                                    return false;
                                }
                            }
                            Err(e) => {
                                reject(log, *at, &e.to_string(), Rejected::Batch(batch)).await;
                                break;
                            }
                        }
                    }
                }
                return true;
            }
        }
    }
}

/// Whether `error` means the database cannot take writes right now (retry the batch later)
/// rather than refusing these rows.
pub(crate) fn is_outage(error: &conveyor_handlers::Error) -> bool {
    match error {
        conveyor_handlers::Error::Database(e) => crate::outage::is_outage(e),
        conveyor_handlers::Error::Publish(e) => crate::outage::is_store_outage(e),
        _ => false,
    }
}

/// Move the published cursor to `next` and count `bytes` / `events` as published.
async fn advance(log: &IngestLog, next: Position, bytes: u64, events: u64) {
    let shared = log.shared();
    *shared.published.lock().expect("lock") = next;
    shared.unpublished_bytes.fetch_sub(
        bytes.min(shared.unpublished_bytes.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    shared.unpublished_events.fetch_sub(
        events.min(shared.unpublished_events.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    let dir = log.config().dir.clone();
    match tokio::task::spawn_blocking(move || segment::save_cursor(&dir, next)).await {
        Ok(Ok(())) => {}
        // published again after a restart, which dedup makes harmless
        Ok(Err(e)) => tracing::warn!(error.message = %e, "cannot save the ingestion log cursor"),
        Err(e) => tracing::warn!(error.message = %e, "cannot save the ingestion log cursor"),
    }
}

enum Rejected<'a> {
    Batch(&'a EventsReceived),
    Raw(&'a [u8]),
}

/// Keep an entry the database refuses (or that does not decode) in `rejected/`, for an
/// operator; it no longer blocks the log.
async fn reject(log: &IngestLog, at: Position, error: &str, entry: Rejected<'_>) {
    log.shared()
        .rejected_entries
        .fetch_add(1, Ordering::Relaxed);
    let dir = log.config().dir.join(REJECTED_DIR);
    let (name, body) = match entry {
        Rejected::Batch(b) => (
            format!("{:020}-{:020}.json", at.segment, at.offset),
            serde_json::to_vec(b).unwrap_or_default(),
        ),
        Rejected::Raw(payload) => (
            format!("{:020}-{:020}.bin", at.segment, at.offset),
            payload.to_vec(),
        ),
    };
    let path = dir.join(&name);
    let written = tokio::task::spawn_blocking(move || {
        super::create_private_dir(&dir)?;
        write_private(&dir.join(name), &body)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    match written {
        Ok(()) => {
            tracing::error!(file = %path.display(), error.message = %error, "ingestion log entry refused by the database; kept for an operator")
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error.message = %error, write.error = %e, "ingestion log entry refused by the database and cannot be kept; it stays in the log segment")
        }
    }
}

fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(body)?;
    file.sync_all()
}

async fn cleanup_logged(config: &LogConfig, published: Position) {
    let config = config.clone();
    match tokio::task::spawn_blocking(move || cleanup(&config, published, SystemTime::now())).await
    {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::debug!(segments = n, "deleted published ingestion log segments"),
        Ok(Err(e)) => tracing::warn!(error.message = %e, "cannot clean up the ingestion log"),
        Err(e) => tracing::warn!(error.message = %e, "cannot clean up the ingestion log"),
    }
}

/// Delete published segments (wholly before `published`), oldest first, while they are older
/// than the retention or their total passes `retained_bytes`; returns how many went.
pub(crate) fn cleanup(
    config: &LogConfig,
    published: Position,
    now: SystemTime,
) -> std::io::Result<usize> {
    let mut done = Vec::new();
    for n in segment::list(&config.dir)? {
        if n >= published.segment {
            break;
        }
        let meta = std::fs::metadata(segment::path(&config.dir, n))?;
        done.push((n, meta.len(), meta.modified()?));
    }
    let mut total: u64 = done.iter().map(|d| d.1).sum();
    let mut deleted = 0;
    for (n, len, modified) in done {
        let old = now.duration_since(modified).unwrap_or_default() > config.retention;
        if !(old || total > config.retained_bytes) {
            break;
        }
        std::fs::remove_file(segment::path(&config.dir, n))?;
        total -= len;
        deleted += 1;
    }
    Ok(deleted)
}

/// Sleep `d`; true when shutdown came first.
async fn sleep_or_stop(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}
