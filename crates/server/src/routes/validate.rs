//! The bulk request's model and its validation: every problem of every event is listed
//! (422, naming `events[i].field`: a missing or mistyped field as much as a rule broken),
//! too many events is a 413 found before the rest is read, attributes are checked for size
//! and depth on their raw bytes before they are parsed, and timestamps outside the kept
//! window are refused rather than clamped or silently dropped. A valid request becomes one
//! ingestion log frame.

use chrono::{DateTime, Utc};
use conveyor_handlers::IngestedEvent;
use garde::Validate as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::api_error::{ApiError, Detail};
use crate::ingest::frame::{self, EventRef, Frame};

/// Most events one request may carry.
pub(crate) const MAX_EVENTS: usize = 5_000;
/// Largest `attributes` object, as sent (checked on the raw bytes, before it is parsed).
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// Deepest nesting of arrays and objects inside `attributes`.
pub(crate) const MAX_ATTRIBUTES_DEPTH: usize = 32;

/// The request body: the envelope only. Each event stays raw JSON until it is checked on its
/// own, so one bad event is a 422 naming it, and at most [`MAX_EVENTS`] are ever looked at.
#[derive(Debug, Deserialize)]
pub(crate) struct BulkRequest<'a> {
    #[serde(borrow, deserialize_with = "at_most_max_events")]
    pub(crate) events: Vec<&'a RawValue>,
}

/// The message of the error [`at_most_max_events`] stops with.
pub(crate) const TOO_MANY_EVENTS: &str = "more than 5000 events in one request";

/// Collect the events' raw values, stopping at the first one past [`MAX_EVENTS`].
fn at_most_max_events<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<&'de RawValue>, D::Error> {
    struct Bounded;
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = Vec<&'de RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of events")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_EVENTS));
            while let Some(event) = seq.next_element::<&'de RawValue>()? {
                if events.len() == MAX_EVENTS {
                    return Err(serde::de::Error::custom(TOO_MANY_EVENTS));
                }
                events.push(event);
            }
            Ok(events)
        }
    }
    d.deserialize_seq(Bounded)
}

/// One event as a client sends it; `attributes` stays raw until its size and depth are checked.
#[derive(Debug, Deserialize)]
struct EventIn<'a> {
    #[serde(default)]
    event_id: Option<Uuid>,
    event_type: String,
    actor_id: String,
    source: String,
    timestamp: DateTime<Utc>,
    #[serde(default, borrow)]
    attributes: Option<&'a RawValue>,
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

/// The request's events checked and encoded as one log frame (with the event count), or
/// every problem of every event (422, each naming `events[i].field`).
pub(crate) fn validate(
    namespace: &str,
    request_id: &str,
    request: &BulkRequest<'_>,
    window: &Window,
) -> Result<(Frame, usize), ApiError> {
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
    let mut details = Vec::new();
    let mut events = Vec::with_capacity(n);
    for (i, raw) in request.events.iter().enumerate() {
        let mut problem = |field: &str, message: String| {
            let path = if field.is_empty() {
                format!("events[{i}]")
            } else {
                format!("events[{i}].{field}")
            };
            details.push(Detail {
                index: Some(i),
                field: path,
                message,
            })
        };
        match check_event(namespace, raw, window) {
            Ok(event) => events.push(event),
            Err(problems) => {
                for (field, message) in problems {
                    problem(&field, message);
                }
            }
        }
    }
    if !details.is_empty() {
        return Err(ApiError::Unprocessable {
            field: None,
            details,
        });
    }
    let refs: Vec<EventRef<'_>> = events
        .iter()
        .map(|(e, attributes)| EventRef::new(e, attributes))
        .collect();
    let frame = frame::encode(namespace, request_id, &refs, Utc::now().timestamp_micros());
    Ok((frame, n))
}

/// A checked event (its attributes dropped after the checks) and its attributes' JSON text;
/// or its problems as (field, message).
type Problems = Vec<(String, String)>;

fn check_event<'a>(
    namespace: &str,
    raw: &'a RawValue,
    window: &Window,
) -> Result<(IngestedEvent, &'a str), Problems> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let e: EventIn<'a> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = path
            .trim_start_matches('.')
            .trim_end_matches(".?")
            .trim_end_matches('?');
        let inner = e.into_inner().to_string();
        let mut field = path.to_owned();
        if let Some(missing) = missing_field(&inner) {
            field = if field.is_empty() {
                missing.to_owned()
            } else {
                format!("{field}.{missing}")
            };
        }
        vec![(field, inner)]
    })?;
    let mut problems = Vec::new();
    let attributes_text = e.attributes.map_or("{}", RawValue::get);
    let attributes = if attributes_text.len() > MAX_ATTRIBUTES_BYTES {
        problems.push((
            "attributes".to_owned(),
            format!(
                "{} bytes: at most {MAX_ATTRIBUTES_BYTES} are accepted",
                attributes_text.len()
            ),
        ));
        None
    } else if depth(attributes_text) > MAX_ATTRIBUTES_DEPTH {
        problems.push((
            "attributes".to_owned(),
            format!("nested deeper than {MAX_ATTRIBUTES_DEPTH} levels of arrays and objects"),
        ));
        None
    } else {
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(attributes_text) {
            Ok(map) => Some(map),
            Err(err) => {
                problems.push((
                    "attributes".to_owned(),
                    format!("must be a JSON object: {err}"),
                ));
                None
            }
        }
    };
    let attributes = attributes.unwrap_or_default();
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
    let mut event = IngestedEvent {
        event_id,
        event_type: e.event_type,
        actor_id: e.actor_id,
        source: e.source,
        timestamp: e.timestamp,
        attributes,
    };
    if let Err(report) = event.validate() {
        for (path, error) in report.iter() {
            problems.push((path.to_string(), error.message().to_owned()));
        }
    }
    if let Some(field) = nul_field(&event) {
        problems.push((
            field,
            "contains a NUL character (\\u0000), which cannot be stored".into(),
        ));
    }
    if let Err(message) = window.check(event.timestamp) {
        problems.push(("timestamp".to_owned(), message));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    event.attributes = serde_json::Map::new();
    Ok((event, attributes_text))
}

/// `missing field `x`` → `x`.
pub(crate) fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// The deepest nesting of arrays and objects in a JSON text (strings skipped): linear, no
/// allocation.
pub(crate) fn depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}
