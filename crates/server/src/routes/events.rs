//! `POST /v1/events/bulk`: read (and gunzip) the body within limits, parse and validate the
//! events, and accept them raw-first ([`PipelineStore::accept`]: `events_raw` and the index
//! records of the newly stored events, in one transaction); the 202 is sent only after that
//! commit, or after the batch is durably spooled as `EventsReceived` chunks when the
//! database is down.

use std::io::Read as _;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use conveyor_handlers::{EventsReceived, IngestedEvent, PipelineStore};
use garde::Validate as _;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api_error::{ApiError, Detail};
use crate::app::{AppState, REQUEST_ID};
use crate::auth::Tenant;
use crate::routes::committer::Failure;
use crate::settings::Limits;

/// Most events one request may carry.
pub(crate) const MAX_EVENTS: usize = 5_000;
/// Most events per spooled `EventsReceived`.
const CHUNK: usize = 1_000;
/// Largest `attributes` object, serialized.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// Longest `X-Request-ID` carried into the pipeline.
const MAX_REQUEST_ID: usize = 128;

/// The request body.
#[derive(Debug, Deserialize)]
struct BulkRequest {
    events: Vec<EventIn>,
}

/// One event as a client sends it.
#[derive(Debug, Deserialize)]
struct EventIn {
    #[serde(default)]
    event_id: Option<Uuid>,
    event_type: String,
    actor_id: String,
    source: String,
    timestamp: DateTime<Utc>,
    #[serde(default)]
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The 202 body.
#[derive(Debug, Serialize)]
pub(crate) struct Accepted {
    request_id: String,
    accepted: usize,
}

/// Accept a batch of events for the key's tenant.
pub(crate) async fn bulk<S: PipelineStore>(
    State(state): State<AppState<S>>,
    Tenant(namespace): Tenant,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let request_id = request_id(&headers)?;
    let bytes = read_body(state.limits, &headers, body).await?;
    let request = parse(&bytes)?;
    drop(bytes);
    let window = Window::new(state.max_future, state.retention_days);
    let events = validate(&namespace, request, &window)?;
    let accepted = events.len();

    let batch = EventsReceived {
        namespace,
        request_id,
        events,
    };
    let (batch, outcome) = state.committer.accept(batch).await;
    match outcome {
        Ok(report) => {
            tracing::debug!(
                stored = report.stored,
                duplicates = report.duplicates,
                "batch accepted"
            );
        }
        Err(Failure::Outage(e)) => {
            let chunks: Vec<EventsReceived> = batch
                .events
                .chunks(CHUNK)
                .map(|c| EventsReceived {
                    namespace: batch.namespace.clone(),
                    request_id: batch.request_id.clone(),
                    events: c.to_vec(),
                })
                .collect();
            if let Err(io) = state.spool.append(&chunks).await {
                tracing::error!(db.error = %e, spool.error = %io, "cannot accept nor spool");
                return Err(ApiError::Unavailable(format!(
                    "database unavailable and the local spool cannot write: {io}"
                )));
            }
            tracing::warn!(error.message = %e, accepted, spool.pending = state.spool.pending(), "database unavailable: batch spooled");
        }
        Err(Failure::Refused(e)) => return Err(ApiError::internal(e)),
    }
    let request_id = batch.request_id;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            request_id,
            accepted,
        }),
    ))
}

/// Whether accepting failed because the database cannot take writes right now (spool the
/// batch) rather than refusing these rows.
pub(crate) fn is_outage(error: &conveyor_handlers::Error) -> bool {
    match error {
        conveyor_handlers::Error::Database(e) => crate::outage::is_outage(e),
        conveyor_handlers::Error::Publish(e) => crate::outage::is_store_outage(e),
        _ => false,
    }
}

/// The request id the request-id layer set (the client's, or a fresh UUID).
fn request_id(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(REQUEST_ID) else {
        return Ok(Uuid::new_v4().to_string());
    };
    match value.to_str() {
        Ok(id) if !id.is_empty() && id.len() <= MAX_REQUEST_ID => Ok(id.to_owned()),
        _ => Err(ApiError::bad(
            "x-request-id",
            format!("X-Request-ID must be 1 to {MAX_REQUEST_ID} visible ASCII characters"),
        )),
    }
}

/// The body's bytes: at most `max_body_bytes` on the wire, gunzipped (at most
/// `max_decompressed_bytes`) when `Content-Encoding: gzip`.
async fn read_body(
    limits: Limits,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let max = limits.max_body_bytes;
    let too_large = || ApiError::PayloadTooLarge {
        field: None,
        message: format!("request body exceeds {max} bytes"),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.trim().eq_ignore_ascii_case("identity") => false,
        Some(Ok(v))
            if v.trim().eq_ignore_ascii_case("gzip") || v.trim().eq_ignore_ascii_case("x-gzip") =>
        {
            true
        }
        Some(_) => {
            return Err(ApiError::UnsupportedEncoding(
                "unsupported Content-Encoding: send gzip or an uncompressed body".into(),
            ))
        }
    };
    let wire = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => {
            return Err(ApiError::bad(
                "body",
                format!("cannot read the request body: {e}"),
            ))
        }
    };
    if !gzip {
        return Ok(wire);
    }
    let cap = limits.max_decompressed_bytes;
    tokio::task::spawn_blocking(move || gunzip(&wire, cap))
        .await
        .map_err(ApiError::internal)?
}

fn gunzip(wire: &[u8], cap: usize) -> Result<bytes::Bytes, ApiError> {
    let mut out = Vec::with_capacity(wire.len().saturating_mul(4).min(cap));
    flate2::read::MultiGzDecoder::new(wire)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad("body", format!("request body is not valid gzip: {e}")))?;
    if out.len() > cap {
        return Err(ApiError::PayloadTooLarge {
            field: None,
            message: format!("decompressed request body exceeds {cap} bytes"),
        });
    }
    Ok(out.into())
}

/// Parse the JSON; errors name the path (`events[2].timestamp`) and the line and column.
fn parse(bytes: &[u8]) -> Result<BulkRequest, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let request: BulkRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // `?` stands for a map key serde did not get to read (a syntax error inside an object)
        let path = e.path().to_string();
        let path = path.trim_end_matches(".?").trim_end_matches('?');
        let inner = e.into_inner();
        let mut field = (!path.is_empty() && path != ".").then(|| path.to_owned());
        if let Some(missing) = missing_field(&inner.to_string()) {
            field = Some(match field {
                Some(p) => format!("{p}.{missing}"),
                None => missing.to_owned(),
            });
        }
        let message = match &field {
            Some(f) => format!("invalid JSON at {f}: {inner}"),
            None => format!("invalid JSON: {inner}"),
        };
        ApiError::BadRequest { field, message }
    })?;
    de.end()
        .map_err(|e| ApiError::bad("body", format!("invalid JSON: {e}")))?;
    Ok(request)
}

/// `missing field `x`` → `x`.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// The timestamps the pipeline keeps: from the first day of the retention window (older
/// events would be dropped by the next partition pass, so they are refused rather than
/// silently lost) to `max_future` ahead of the server's clock (refused, not clamped).
#[derive(Debug)]
struct Window {
    oldest: chrono::DateTime<Utc>,
    newest: chrono::DateTime<Utc>,
    max_future: std::time::Duration,
    retention_days: u32,
}

impl Window {
    fn new(max_future: std::time::Duration, retention_days: u32) -> Self {
        let now = Utc::now();
        let first_day = now.date_naive() - chrono::Days::new(u64::from(retention_days.max(1) - 1));
        Self {
            oldest: first_day.and_time(chrono::NaiveTime::MIN).and_utc(),
            newest: now + max_future,
            max_future,
            retention_days,
        }
    }

    fn check(&self, timestamp: chrono::DateTime<Utc>) -> Result<(), String> {
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
fn nul_field(event: &IngestedEvent) -> Option<String> {
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
fn validate(
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn body(events: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap()
    }

    fn event() -> serde_json::Value {
        serde_json::json!({"event_type": "click", "actor_id": "u1", "source": "web", "timestamp": "2026-01-01T00:00:00Z"})
    }

    fn bad_field(err: ApiError) -> Option<String> {
        match err {
            ApiError::BadRequest { field, .. } => field,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn parse_errors_name_the_field() {
        let mut wrong = event();
        wrong["event_type"] = serde_json::json!(5);
        let err = parse(&body(serde_json::json!([event(), wrong]))).unwrap_err();
        assert_eq!(bad_field(err).as_deref(), Some("events[1].event_type"));

        let mut missing = event();
        missing.as_object_mut().unwrap().remove("source");
        let err = parse(&body(serde_json::json!([missing]))).unwrap_err();
        assert_eq!(bad_field(err).as_deref(), Some("events[0].source"));

        let err = parse(b"{}").unwrap_err();
        assert_eq!(bad_field(err).as_deref(), Some("events"));

        let err = parse(br#"{"events": [{"event_type": "click",}]}"#).unwrap_err();
        assert_eq!(bad_field(err).as_deref(), Some("events[0]"));
    }

    #[test]
    fn absent_ids_are_derived_and_attributes_default_to_empty() {
        let request = parse(&body(serde_json::json!([event(), event()]))).unwrap();
        let events = validate("ns", request, &Window::new(Duration::from_secs(60), 3650)).unwrap();
        assert_eq!(events[0].event_id, events[1].event_id);
        assert!(events[0].attributes.is_empty());
    }

    #[test]
    fn invalid_events_are_listed_by_index_and_field() {
        let mut bad = event();
        bad["actor_id"] = "".into();
        bad["timestamp"] = (Utc::now() + chrono::Duration::days(2)).to_rfc3339().into();
        let request = parse(&body(serde_json::json!([event(), bad]))).unwrap();
        let Err(ApiError::Unprocessable { details, .. }) = validate(
            "ns",
            request,
            &Window::new(Duration::from_secs(86_400), 3650),
        ) else {
            panic!("expected 422");
        };
        let fields: Vec<_> = details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["events[1].actor_id", "events[1].timestamp"]);
        assert!(details.iter().all(|d| d.index == Some(1)));
    }

    #[test]
    fn gunzip_enforces_the_decompressed_cap() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[b' '; 10_000]).unwrap();
        let wire = gz.finish().unwrap();
        assert_eq!(gunzip(&wire, 10_000).unwrap().len(), 10_000);
        assert!(matches!(
            gunzip(&wire, 9_999),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(ApiError::BadRequest { .. })
        ));
    }

    #[test]
    fn the_window_refuses_the_future_and_what_retention_would_drop() {
        let window = Window::new(Duration::from_secs(3600), 30);
        let now = Utc::now();
        assert!(window.check(now).is_ok());
        assert!(window.check(now - chrono::Duration::days(29)).is_ok());
        let old = window.check(now - chrono::Duration::days(31)).unwrap_err();
        assert!(old.contains("30-day retention window"), "{old}");
        let future = window.check(now + chrono::Duration::hours(2)).unwrap_err();
        assert!(future.contains("ahead of the server's clock"), "{future}");
    }
}
