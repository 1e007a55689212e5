//! The log's files: numbered segment files (`00000000000000000001.log`), scanning them for
//! their valid frames, reading frames from a [`Position`], and the `published` cursor file.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use super::frame::{Header, HEADER};

const SUFFIX: &str = ".log";
const CURSOR_FILE: &str = "published";

/// A place in the log: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Position {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
}

/// The path of segment `n` in `dir`.
pub(crate) fn path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}{SUFFIX}"))
}

/// The segment numbers in `dir`, ascending.
pub(crate) fn list(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut segments: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            name.to_str()?.strip_suffix(SUFFIX)?.parse().ok()
        })
        .collect();
    segments.sort_unstable();
    Ok(segments)
}

/// Create segment `n` (it must not exist), private to the owner.
pub(crate) fn create(dir: &Path, n: u64) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path(dir, n))
}

/// Open segment `n` for appending.
pub(crate) fn open_append(dir: &Path, n: u64) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .open(path(dir, n))
}

/// Make a directory entry change (a created or renamed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What a scan of one segment found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Offset after the last whole, checksummed frame.
    pub(crate) valid_end: u64,
    /// The file's length (more than `valid_end` when its tail is torn or corrupt).
    pub(crate) file_len: u64,
    /// Frames and events from the scan's start to `valid_end`.
    pub(crate) frames: u64,
    pub(crate) events: u64,
    /// Append time (µs) of the first frame scanned, if any.
    pub(crate) first_appended_at: Option<i64>,
}

/// Read segment `n` from `from` and check every frame's checksum.
pub(crate) fn scan(dir: &Path, n: u64, from: u64) -> std::io::Result<Scan> {
    let file = File::open(path(dir, n))?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader.seek(SeekFrom::Start(from))?;
    let mut scan = Scan {
        valid_end: from,
        file_len,
        ..Scan::default()
    };
    let mut payload = Vec::new();
    while let Some(header) = read_frame(&mut reader, scan.valid_end, file_len, &mut payload)? {
        scan.valid_end += header.frame_len();
        scan.frames += 1;
        scan.events += u64::from(header.events);
        scan.first_appended_at.get_or_insert(header.appended_at);
    }
    Ok(scan)
}

/// The frame at `offset` of a file of `file_len` bytes, its payload in `payload`; `None` at
/// the end, or where the frame is torn or fails its checksum.
fn read_frame(
    reader: &mut impl std::io::Read,
    offset: u64,
    file_len: u64,
    payload: &mut Vec<u8>,
) -> std::io::Result<Option<Header>> {
    if file_len.saturating_sub(offset) < HEADER as u64 {
        return Ok(None);
    }
    let mut head = [0u8; HEADER];
    reader.read_exact(&mut head)?;
    let Some(header) = Header::parse(&head) else {
        return Ok(None);
    };
    if offset + header.frame_len() > file_len {
        return Ok(None);
    }
    payload.resize(header.len as usize, 0);
    reader.read_exact(payload)?;
    Ok(header.matches(payload).then_some(header))
}

/// One frame read back.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Where the frame starts.
    pub(crate) at: Position,
    pub(crate) header: Header,
    pub(crate) payload: Vec<u8>,
}

/// Reads frames in order from a position up to the durable end.
#[derive(Debug)]
pub(crate) struct Reader {
    dir: PathBuf,
    /// The next frame to read.
    pub(crate) next: Position,
    file: Option<(u64, BufReader<File>, u64)>,
}

/// What [`Reader::read`] found where a frame should be.
#[derive(Debug)]
pub(crate) enum Read {
    /// Frames, in order (possibly none: nothing new before `end`).
    Entries(Vec<Entry>),
    /// The segment is damaged from `at` on (a frame fails its checksum before the durable
    /// end); the reader has moved on to the next segment.
    Damaged { at: Position, skipped: u64 },
}

impl Reader {
    pub(crate) fn new(dir: &Path, next: Position) -> Self {
        Self {
            dir: dir.to_path_buf(),
            next,
            file: None,
        }
    }

    /// Frames from `next` up to `end` (exclusive), at most `max_events` events (at least one
    /// frame) or `max_bytes`.
    pub(crate) fn read(
        &mut self,
        end: Position,
        max_events: u64,
        max_bytes: u64,
    ) -> std::io::Result<Read> {
        let mut entries = Vec::new();
        let (mut events, mut bytes) = (0u64, 0u64);
        while self.next < end && (entries.is_empty() || (events < max_events && bytes < max_bytes))
        {
            if !matches!(&self.file, Some((n, _, _)) if *n == self.next.segment) {
                let file = match File::open(path(&self.dir, self.next.segment)) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        self.next = Position {
                            segment: self.next.segment + 1,
                            offset: 0,
                        };
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let len = file.metadata()?.len();
                let mut reader = BufReader::with_capacity(1 << 20, file);
                reader.seek(SeekFrom::Start(self.next.offset))?;
                self.file = Some((self.next.segment, reader, len));
            }
            let (segment, reader, len) = self.file.as_mut().expect("opened above");
            let segment = *segment;
            // the durable end bounds the segment being written; earlier ones are complete
            let file_len = if segment == end.segment {
                end.offset
            } else {
                if self.next.offset >= *len {
                    *len = reader.get_ref().metadata()?.len();
                }
                *len
            };
            if self.next.offset >= file_len && segment < end.segment {
                // the writer moved on to the next segment
                self.file = None;
                self.next = Position {
                    segment: segment + 1,
                    offset: 0,
                };
                continue;
            }
            let mut payload = Vec::new();
            match read_frame(reader, self.next.offset, file_len, &mut payload)? {
                Some(header) => {
                    let at = self.next;
                    self.next.offset += header.frame_len();
                    events += u64::from(header.events);
                    bytes += header.frame_len();
                    entries.push(Entry {
                        at,
                        header,
                        payload,
                    });
                }
                None if entries.is_empty() => {
                    let at = self.next;
                    self.file = None;
                    let skipped = file_len.saturating_sub(at.offset);
                    self.next = Position {
                        segment: at.segment + 1,
                        offset: 0,
                    };
                    return Ok(Read::Damaged { at, skipped });
                }
                // report the damage on the next call, after these entries are published
                None => {
                    self.file = None;
                    break;
                }
            }
        }
        Ok(Read::Entries(entries))
    }
}

/// The published cursor saved in `dir`, if any.
pub(crate) fn load_cursor(dir: &Path) -> std::io::Result<Option<Position>> {
    match std::fs::read_to_string(dir.join(CURSOR_FILE)) {
        Ok(text) => {
            let mut parts = text.split_whitespace().map(str::parse::<u64>);
            match (parts.next(), parts.next()) {
                (Some(Ok(segment)), Some(Ok(offset))) => Ok(Some(Position { segment, offset })),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} is not `SEGMENT OFFSET`",
                        dir.join(CURSOR_FILE).display()
                    ),
                )),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Save the published cursor (write a temporary file and rename it over the old one). It is
/// not fsync'd: after a power loss, entries may be published again, which the backends'
/// `(namespace, event_id, timestamp)` dedup makes harmless.
pub(crate) fn save_cursor(dir: &Path, at: Position) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{CURSOR_FILE}.tmp"));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    writeln!(file, "{} {}", at.segment, at.offset)?;
    drop(file);
    std::fs::rename(tmp, dir.join(CURSOR_FILE))
}
