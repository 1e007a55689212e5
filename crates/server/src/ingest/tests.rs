//! The log on its own: appends survive reopening, a torn tail is cut off, counts follow the
//! cursor, and the cleanup deletes published segments only.

use std::time::{Duration, SystemTime};

use super::frame::{self, EventRef};
use super::segment::{self, Position, Read, Reader};
use super::*;

/// A fresh log directory under the temp directory, removed on drop.
struct ScratchDir(PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A log on a fresh directory, its configuration adjusted by `tweak`.
fn fresh_log(tweak: impl FnOnce(&mut LogConfig)) -> (ScratchDir, IngestLog) {
    let dir = ScratchDir(std::env::temp_dir().join(format!(
        "conveyor-log-test-{}",
        uuid::Uuid::new_v4().simple()
    )));
    let mut config = config(&dir);
    tweak(&mut config);
    let log = IngestLog::open(config).unwrap();
    (dir, log)
}

/// The log in `dir` opened again, with the default configuration.
fn reopen(dir: &Path) -> IngestLog {
    IngestLog::open(config(dir)).unwrap()
}

/// The first frame of a fresh log.
const START: Position = Position {
    segment: 1,
    offset: 0,
};

fn config(dir: &Path) -> LogConfig {
    LogConfig {
        dir: dir.to_path_buf(),
        ..LogConfig::default()
    }
}

fn frame(n: usize) -> Frame {
    let events: Vec<EventRef<'_>> = (0..n)
        .map(|_| EventRef {
            event_id: uuid::Uuid::new_v4(),
            event_type: "click",
            actor_id: "u1",
            source: "web",
            timestamp: chrono::Utc::now(),
            attributes: r#"{"page": "/pricing"}"#,
        })
        .collect();
    frame::encode("acme", "r", &events, chrono::Utc::now().timestamp_micros())
}

/// Append a frame of `n` events; the log's durable end after it.
async fn append(log: &IngestLog, n: usize) -> Position {
    log.append(frame(n)).await.unwrap();
    *log.shared().durable.borrow()
}

fn read_all(dir: &Path, from: Position, end: Position) -> Vec<u32> {
    let mut reader = Reader::new(dir, from);
    match reader.read(end, u64::MAX, u64::MAX).unwrap() {
        Read::Entries(entries) => entries.iter().map(|e| e.header.events).collect(),
        Read::Damaged { at, .. } => panic!("damaged at {at:?}"),
    }
}

#[tokio::test]
async fn appends_survive_reopening_and_count_as_unpublished() {
    let (dir, log) = fresh_log(|_| {});
    log.append(frame(3)).await.unwrap();
    log.append(frame(2)).await.unwrap();
    assert_eq!(log.status().unpublished_events, 5);
    let end = *log.shared().durable.borrow();
    drop(log);

    let reopened = reopen(&dir);
    assert_eq!(reopened.status().unpublished_events, 5);
    assert_eq!(*reopened.shared().durable.borrow(), end);
    assert_eq!(read_all(&dir, START, end), [3, 2]);
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_the_acknowledged_frames_kept() {
    let (dir, log) = fresh_log(|_| {});
    let end = append(&log, 4).await;
    drop(log);
    // a crash mid-write: half of a frame that was never acknowledged
    let torn = frame(7);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(segment::path(&dir, 1))
        .unwrap();
    std::io::Write::write_all(&mut file, &torn.bytes[..torn.bytes.len() / 2]).unwrap();
    drop(file);

    let reopened = reopen(&dir);
    assert_eq!(reopened.status().unpublished_events, 4);
    assert_eq!(
        std::fs::metadata(segment::path(&dir, 1)).unwrap().len(),
        end.offset
    );
    // and the next append follows the last good frame
    reopened.append(frame(1)).await.unwrap();
    let end = *reopened.shared().durable.borrow();
    assert_eq!(read_all(&dir, START, end), [4, 1]);
}

#[tokio::test]
async fn the_cursor_decides_what_counts_as_unpublished_after_a_restart() {
    let (dir, log) = fresh_log(|_| {});
    let first_end = append(&log, 3).await;
    append(&log, 2).await;
    drop(log);
    segment::save_cursor(&dir, first_end).unwrap();
    let reopened = reopen(&dir);
    assert_eq!(reopened.status().unpublished_events, 2);
}

#[tokio::test]
async fn segments_rotate_and_a_reader_follows_them_in_order() {
    let (dir, log) = fresh_log(|c| c.segment_bytes = 1);
    for n in 1..=3 {
        log.append(frame(n)).await.unwrap();
    }
    let end = *log.shared().durable.borrow();
    assert_eq!(end.segment, 3);
    assert_eq!(segment::list(&dir).unwrap(), [1, 2, 3]);
    assert_eq!(read_all(&dir, START, end), [1, 2, 3]);
}

#[tokio::test]
async fn capacity_refuses_appends_without_writing_them() {
    let (_dir, log) = fresh_log(|c| c.max_unpublished_events = 5);
    log.append(frame(5)).await.unwrap();
    assert!(matches!(
        log.append(frame(1)).await,
        Err(AppendError::Full(_))
    ));
    assert_eq!(log.status().unpublished_events, 5);
}

#[tokio::test]
async fn cleanup_deletes_only_published_segments_past_age_or_size() {
    let (dir, log) = fresh_log(|c| c.segment_bytes = 1);
    for _ in 0..4 {
        log.append(frame(10)).await.unwrap();
    }
    drop(log);
    let published = Position {
        segment: 3,
        offset: 0,
    };
    let keep_all = LogConfig {
        retention: Duration::from_secs(3600),
        retained_bytes: u64::MAX,
        ..config(&dir)
    };
    assert_eq!(
        publisher::cleanup(&keep_all, published, SystemTime::now()).unwrap(),
        0
    );
    // one byte of retained space: every published segment goes, the rest stay
    let tiny = LogConfig {
        retained_bytes: 1,
        ..keep_all.clone()
    };
    assert_eq!(
        publisher::cleanup(&tiny, published, SystemTime::now()).unwrap(),
        2
    );
    assert_eq!(segment::list(&dir).unwrap(), [3, 4]);
    // by age, even far in the future, nothing at or after the cursor is deleted
    let later = SystemTime::now() + Duration::from_secs(86_400);
    assert_eq!(publisher::cleanup(&keep_all, published, later).unwrap(), 0);
    assert_eq!(segment::list(&dir).unwrap(), [3, 4]);
}
