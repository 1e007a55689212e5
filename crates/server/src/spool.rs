//! The local write-ahead spool (the brief's ring buffer): where accepted batches wait while
//! the database cannot take them. (stub: being written by the lead; do not edit)

use std::path::Path;

use conveyor::PgStore;
use conveyor_handlers::EventsReceived;

/// A directory of fsync'd batch files, forwarded into the outbox when the database is back.
#[derive(Debug)]
pub struct Spool {}

impl Spool {
    /// Open (creating) the spool directory.
    ///
    /// # Errors
    /// When the directory cannot be created or read.
    pub fn open(_dir: &Path) -> std::io::Result<Spool> {
        Ok(Spool {})
    }

    /// Durably append `batches` (fsync'd before this returns). Called by the ingestion
    /// route when publishing to the outbox failed; an `Err` means the API must answer 503.
    ///
    /// # Errors
    /// When the spool cannot be written.
    pub async fn append(&self, _batches: &[EventsReceived]) -> std::io::Result<()> {
        Err(std::io::Error::other("spool not built yet"))
    }

    /// Batches waiting in the spool.
    pub fn pending(&self) -> u64 {
        0
    }

    /// Forward spooled batches into the outbox until the spool is empty or `shutdown` fires;
    /// runs for the server's lifetime.
    pub async fn forward(&self, _store: PgStore, _shutdown: tokio_util::sync::CancellationToken) {}
}
