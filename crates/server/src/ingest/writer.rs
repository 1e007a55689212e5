//! The log's writer: one OS thread that appends frames in groups. Every request waiting when
//! a group starts goes into it, the group is written with one `write` and made durable with
//! one `fdatasync`, and only then is each request answered: concurrent requests share an
//! fsync instead of queueing one each.

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::frame::Frame;
use super::segment::{self, Position};
use super::{Durability, Shared};

/// Most bytes one group writes.
const GROUP_BYTES: usize = 16 * 1024 * 1024;
/// Most frames one group writes.
const GROUP_FRAMES: usize = 4_096;

/// One request's frame and where its answer goes.
#[derive(Debug)]
pub(crate) struct Append {
    pub(crate) frame: Frame,
    pub(crate) reply: oneshot::Sender<Result<(), String>>,
}

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct Active {
    pub(crate) number: u64,
    pub(crate) file: File,
    /// Bytes durably written (the next frame's offset).
    pub(crate) len: u64,
    /// A failed write left bytes past `len` that could not be cut off: start a new segment.
    pub(crate) poisoned: bool,
}

/// The writer thread's state.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) dir: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) segment_bytes: u64,
    pub(crate) active: Active,
    pub(crate) shared: Arc<Shared>,
}

impl Writer {
    /// Run until every sender is dropped.
    pub(crate) fn run(mut self, mut queue: mpsc::Receiver<Append>) {
        let mut buffer = Vec::new();
        while let Some(first) = queue.blocking_recv() {
            let mut group = vec![first];
            let mut bytes = group[0].frame.bytes.len();
            while bytes < GROUP_BYTES && group.len() < GROUP_FRAMES {
                match queue.try_recv() {
                    Ok(next) => {
                        bytes += next.frame.bytes.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            buffer.clear();
            let mut events = 0u64;
            for a in &group {
                buffer.extend_from_slice(&a.frame.bytes);
                events += u64::from(a.frame.events);
            }
            // a panic in the write path answers the group as a failed write and the thread
            // carries on (the next group starts a new segment)
            let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.write(&buffer)
            }))
            .unwrap_or_else(|panic| {
                self.active.poisoned = true;
                self.shared.count_writer_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %message, "ingestion log writer panicked; restarting it");
                Err(std::io::Error::other(format!(
                    "the log writer panicked: {message}"
                )))
            });
            match written {
                Ok(end) => {
                    self.shared.appended(buffer.len() as u64, events, end);
                    for a in group {
                        let _ = a.reply.send(Ok(()));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!(error.message = %message, frames = group.len(), "ingestion log cannot write");
                    self.shared.write_failed(&message);
                    for a in group {
                        let _ = a.reply.send(Err(message.clone()));
                    }
                }
            }
        }
    }

    /// Append `bytes` to the active segment (rotating first when it is full or poisoned) and
    /// make them durable; returns the new durable end.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<Position> {
        if self.active.poisoned || (self.active.len > 0 && self.active.len >= self.segment_bytes) {
            self.rotate()?;
        }
        let result = self
            .active
            .file
            .write_all(bytes)
            .and_then(|()| match self.durability {
                Durability::Fsync => self.active.file.sync_data(),
                Durability::Os => Ok(()),
            });
        if let Err(e) = result {
            // cut off what may have been written, so the next group follows the last good frame
            if self.active.file.set_len(self.active.len).is_err() {
                self.active.poisoned = true;
            }
            return Err(e);
        }
        self.active.len += bytes.len() as u64;
        Ok(Position {
            segment: self.active.number,
            offset: self.active.len,
        })
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let next = self.active.number + 1;
        let file = segment::create(&self.dir, next)?;
        if self.durability == Durability::Fsync {
            segment::sync_dir(&self.dir)?;
        }
        self.active = Active {
            number: next,
            file,
            len: 0,
            poisoned: false,
        };
        self.shared.segment_started(next);
        Ok(())
    }
}
