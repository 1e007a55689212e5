//! The bulk request's model and its validation: every problem of every event is listed
//! (422, naming `events[i].field`), too many events is a 413, and timestamps outside the
//! kept window are refused rather than clamped or silently dropped.

use chrono::{DateTime, Utc};
use conveyor_handlers::IngestedEvent;
use garde::Validate as _;
use serde::Deserialize;
use uuid::Uuid;

use crate::api_error::{ApiError, Detail};

/// Most events one request may carry.
pub(crate) const MAX_EVENTS: usize = 5_000;
/// Largest `attributes` object, serialized.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// The request body.
#[derive(Debug, Deserialize)]
pub(crate) struct BulkRequest {
    pub(crate) events: Vec<EventIn>,
}

/// One event as a client sends it.
#[derive(Debug, Deserialize)]
pub(crate) struct EventIn {
    #[serde(default)]
    event_id: Option<Uuid>,
    event_type: String,
    actor_id: String,
    source: String,
    timestamp: DateTime<Utc>,
    #[serde(default)]
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The timestamps the pipeline keeps: from the first day of the retention window (older
/// events would be dropped by the next partition pass, so they are refused rather than
/// silently lost) to `max_future` ahead of the server's clock (refused, not clamped).
#[derive(Debug)]
pub(crate) struct Window {
    oldest: chrono::DateTime<Utc>,
    newest: chrono::DateTime<Utc>,
    max_future: std::time::Duration,
    retention_days: u32,
}

impl Window {
    pub(crate) fn new(max_future: std::time::Duration, retention_days: u32) -> Self {
        let now = Utc::now();
        // saturating: out-of-range settings must not panic here (the flags are range-checked)
        let first_day = now
            .date_naive()
            .checked_sub_days(chrono::Days::new(u64::from(retention_days.max(1) - 1)))
            .unwrap_or(chrono::NaiveDate::MIN);
        let newest = chrono::TimeDelta::from_std(max_future)
            .ok()
            .and_then(|ahead| now.checked_add_signed(ahead))
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
        Self {
            oldest: first_day.and_time(chrono::NaiveTime::MIN).and_utc(),
            newest,
            max_future,
            retention_days,
        }
    }

    pub(crate) fn check(&self, timestamp: chrono::DateTime<Utc>) -> Result<(), String> {
        if timestamp > self.newest {
            return Err(format!(
                "{} is more than {}s ahead of the server's clock: future events are rejected, not clamped",
                timestamp.to_rfc3339(),
                self.max_future.as_secs()
            ));
        }
        if timestamp < self.oldest {
            return Err(format!(
                "{} is before the {}-day retention window (starts {}): it would be dropped",
                timestamp.to_rfc3339(),
                self.retention_days,
                self.oldest.to_rfc3339()
            ));
        }
        Ok(())
    }
}

/// The first field of `event` holding a NUL character, which Postgres text and jsonb refuse.
pub(crate) fn nul_field(event: &IngestedEvent) -> Option<String> {
    fn in_value(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(in_value),
            serde_json::Value::Object(map) => {
                map.iter().any(|(k, v)| k.contains('\0') || in_value(v))
            }
            _ => false,
        }
    }
    [
        ("event_type", &event.event_type),
        ("actor_id", &event.actor_id),
        ("source", &event.source),
    ]
    .into_iter()
    .find(|(_, v)| v.contains('\0'))
    .map(|(field, _)| field.to_owned())
    .or_else(|| {
        event
            .attributes
            .iter()
            .find(|(k, v)| k.contains('\0') || in_value(v))
            .map(|(k, _)| format!("attributes.{}", k.replace('\0', "\\u0000")))
    })
}

/// The events as the pipeline carries them, or every problem found (422), or 413 for too many.
pub(crate) fn validate(
    namespace: &str,
    request: BulkRequest,
    window: &Window,
) -> Result<Vec<IngestedEvent>, ApiError> {
    let n = request.events.len();
    if n == 0 {
        return Err(ApiError::Unprocessable {
            field: Some("events".into()),
            details: vec![Detail {
                index: None,
                field: "events".into(),
                message: "must contain at least one event".into(),
            }],
        });
    }
    if n > MAX_EVENTS {
        return Err(ApiError::PayloadTooLarge {
            field: Some("events".into()),
            message: format!("{n} events in one request: at most {MAX_EVENTS} are accepted"),
        });
    }
    let mut details = Vec::new();
    let mut events = Vec::with_capacity(n);
    for (i, e) in request.events.into_iter().enumerate() {
        let attributes = e.attributes.unwrap_or_default();
        let event_id = e.event_id.unwrap_or_else(|| {
            IngestedEvent::derive_id(
                namespace,
                &e.event_type,
                &e.actor_id,
                &e.source,
                e.timestamp,
                &attributes,
            )
        });
        let event = IngestedEvent {
            event_id,
            event_type: e.event_type,
            actor_id: e.actor_id,
            source: e.source,
            timestamp: e.timestamp,
            attributes,
        };
        let mut problem = |field: &str, message: String| {
            details.push(Detail {
                index: Some(i),
                field: format!("events[{i}].{field}"),
                message,
            })
        };
        if let Err(report) = event.validate() {
            for (path, error) in report.iter() {
                problem(&path.to_string(), error.message().to_owned());
            }
        }
        let size = serde_json::to_vec(&event.attributes).map_or(0, |v| v.len());
        if size > MAX_ATTRIBUTES_BYTES {
            problem(
                "attributes",
                format!("{size} bytes serialized: at most {MAX_ATTRIBUTES_BYTES} are accepted"),
            );
        }
        if let Some(field) = nul_field(&event) {
            problem(
                &field,
                "contains a NUL character (\\u0000), which cannot be stored".into(),
            );
        }
        if let Err(message) = window.check(event.timestamp) {
            problem("timestamp", message);
        }
        events.push(event);
    }
    if details.is_empty() {
        Ok(events)
    } else {
        Err(ApiError::Unprocessable {
            field: None,
            details,
        })
    }
}
