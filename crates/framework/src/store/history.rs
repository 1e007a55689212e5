//! Error history: the last few failed attempts of an event, kept beside `last_error`.

use chrono::{DateTime, Utc};

/// One failed attempt of an event, from its error history: the last five failed attempts,
/// oldest first. River (`AttemptError` in `errors`) and Oban (`errors`) keep every attempt;
/// Conveyor keeps the last five, trimmed in the statement that records them, so a row stays
/// small however often it fails. Retries, dead-lettering (poison payloads included) and
/// the reaper's `lease expired` are recorded; snoozes and cancellations are not failures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttemptError {
    /// The attempt that failed (1 is the first claim).
    pub attempt: u32,
    /// When the failure was recorded.
    pub at: DateTime<Utc>,
    /// The worker that held the event (`claimed_by`), when known.
    pub worker: Option<String>,
    /// What went wrong: the handler's error, the payload's decode error, or `lease expired`
    /// when the reaper took the event back.
    pub error: String,
}

/// The history stored in an event's `errors` column (JSON text on every backend; null when
/// no attempt failed). Lookups of any row that selects the column decode it with this.
/// A history that does not parse is logged and read as empty rather than failing the read.
pub(crate) fn attempt_errors(stored: Option<&str>) -> Vec<AttemptError> {
    let Some(json) = stored else {
        return Vec::new();
    };
    serde_json::from_str(json).unwrap_or_else(|e| {
        tracing::warn!(error.message = %e, "an event's error history does not parse; ignored");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_instants_decode() {
        let pg = r#"[{"attempt": 1, "at": "2026-12-02T04:02:07.486124+00:00", "worker": "w", "error": "boom"}]"#;
        let sqlite = r#"[{"attempt":2,"at":"2026-12-02T04:02:07.486Z","worker":null,"error":"x"}]"#;
        assert_eq!(attempt_errors(Some(pg))[0].worker.as_deref(), Some("w"));
        assert_eq!(attempt_errors(Some(sqlite))[0].attempt, 2);
        assert!(attempt_errors(None).is_empty());
        assert!(attempt_errors(Some("not json")).is_empty());
    }
}
