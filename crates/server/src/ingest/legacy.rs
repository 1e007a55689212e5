//! Batches an earlier version spooled (`--spool-dir`, one `*.spool.json` file each) while
//! the database was down: moved into the ingestion log at start-up, so an upgrade loses none.

use std::path::Path;

use conveyor_handlers::EventsReceived;

use super::frame::{self, EventRef};
use super::IngestLog;

const SUFFIX: &str = ".spool.json";

/// Append every spooled file in `dir` to `log`, oldest first, deleting each once appended; a
/// file that does not parse stays where it is (logged). Returns how many files moved.
///
/// # Errors
/// When the directory cannot be read or the log cannot take a batch.
pub(crate) async fn import(dir: &Path, log: &IngestLog) -> anyhow::Result<usize> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with(SUFFIX))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    files.sort();
    let mut moved = 0;
    for path in files {
        let batches: Vec<EventsReceived> = match serde_json::from_slice(&std::fs::read(&path)?) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(file = %path.display(), error.message = %e, "a spool file of an earlier version does not parse; left in place for an operator");
                continue;
            }
        };
        for batch in &batches {
            let texts: Vec<String> = batch
                .events
                .iter()
                .map(|e| serde_json::to_string(&e.attributes))
                .collect::<Result<_, _>>()?;
            let refs: Vec<EventRef<'_>> = batch
                .events
                .iter()
                .zip(&texts)
                .map(|(e, attributes)| EventRef::new(e, attributes))
                .collect();
            let frame = frame::encode(
                &batch.namespace,
                &batch.request_id,
                &refs,
                chrono::Utc::now().timestamp_micros(),
            );
            log.append(frame).await?;
        }
        std::fs::remove_file(&path)?;
        moved += 1;
    }
    if moved > 0 {
        tracing::info!(files = moved, dir = %dir.display(), "moved spooled batches of an earlier version into the ingestion log");
    }
    Ok(moved)
}
