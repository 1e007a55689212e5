//! `POST /v1/events/bulk`: read (and gunzip) the body within limits, parse and validate the
//! events, and append them to the ingestion log ([`IngestLog::append`]); the 202 is sent once
//! that append is durable. The database is never on this path: the log's publisher moves the
//! events into the store.
//!
//! The work a request can cause is bounded before it is allocated: the wire size is checked
//! against `Content-Length` and while reading, gzip is inflated in steps under a ratio cap and
//! the decompressed cap, every byte held is charged to a server-wide in-flight budget (503
//! with `Retry-After` when spent), at most 5,000 events are looked at, and each event's
//! attributes are checked for size and depth on their raw bytes before they are parsed.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use conveyor_handlers::PipelineStore;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use crate::api_error::ApiError;
use crate::auth::Tenant;
use crate::ingest::{Budget, BudgetSpent};
use crate::settings::Limits;
use crate::state::{AppState, REQUEST_ID};

use super::validate::{missing_field, validate, BulkRequest, Window, MAX_EVENTS, TOO_MANY_EVENTS};

/// Longest `X-Request-ID` carried into the pipeline.
const MAX_REQUEST_ID: usize = 128;
/// A gzip body may inflate to this many times its wire size (and at least [`RATIO_FLOOR`]).
pub(crate) const MAX_RATIO: usize = 100;
/// What any gzip body may inflate to, whatever its ratio.
const RATIO_FLOOR: usize = 1024 * 1024;
/// Inflate step.
const STEP: usize = 64 * 1024;
/// What clients are told to wait before retrying a 503.
const RETRY_AFTER_SECS: u64 = 1;

/// The 202 body.
#[derive(Debug, Serialize)]
pub(crate) struct Accepted {
    request_id: String,
    accepted: usize,
}

impl From<BudgetSpent> for ApiError {
    fn from(spent: BudgetSpent) -> Self {
        ApiError::busy(spent.to_string(), RETRY_AFTER_SECS)
    }
}

/// Accept a batch of events for the key's tenant.
pub(crate) async fn bulk<S: PipelineStore>(
    State(state): State<AppState<S>>,
    Tenant(namespace): Tenant,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let request_id = request_id(&headers)?;
    content_type(&headers)?;
    let mut held = None;
    let bytes = read_body(state.limits, &state.budget, &mut held, &headers, body).await?;
    let request = parse(&bytes)?;
    let window = Window::new(state.max_future, state.retention_days);
    let (frame, accepted) = validate(&namespace, &request_id, &request, &window)?;
    drop(request);
    drop(bytes);
    // full or unable to write: either way nothing was accepted and the client retries
    state
        .log
        .append(frame)
        .await
        .map_err(|e| ApiError::busy(e.to_string(), RETRY_AFTER_SECS * 5))?;
    drop(held);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            request_id,
            accepted,
        }),
    ))
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

/// 415 unless the body is declared JSON (`application/json` or `…+json`), or not declared.
fn content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some(t)
            if t == "application/json"
                || (t.starts_with("application/") && t.ends_with("+json")) =>
        {
            Ok(())
        }
        _ => Err(ApiError::UnsupportedEncoding(
            "unsupported Content-Type: send application/json".into(),
        )),
    }
}

/// The body's bytes: at most `max_body_bytes` on the wire, gunzipped (at most
/// `max_decompressed_bytes`, and [`MAX_RATIO`] times the wire size) when
/// `Content-Encoding: gzip`; every byte is charged to the in-flight budget first.
async fn read_body(
    limits: Limits,
    budget: &Budget,
    held: &mut Option<OwnedSemaphorePermit>,
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
    // a declared length is charged before a byte is read; chunked bodies once read
    if let Some(len) = declared {
        budget.charge(held, len as usize)?;
    }
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
    if declared.is_none() {
        budget.charge(held, wire.len())?;
    }
    if !gzip {
        return Ok(wire);
    }
    let cap = limits
        .max_decompressed_bytes
        .min(wire.len().saturating_mul(MAX_RATIO).max(RATIO_FLOOR));
    let budget = budget.clone();
    let mut permit = held.take();
    let (result, permit) = tokio::task::spawn_blocking(move || {
        let result = gunzip(&wire, cap, |n| Ok(budget.charge(&mut permit, n)?));
        (result, permit)
    })
    .await
    .map_err(ApiError::internal)?;
    *held = permit;
    result
}

/// Inflate `wire`, at most `cap` bytes, calling `charge` for each step before it is held.
fn gunzip(
    wire: &[u8],
    cap: usize,
    mut charge: impl FnMut(usize) -> Result<(), ApiError>,
) -> Result<bytes::Bytes, ApiError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(wire);
    let mut out: Vec<u8> = Vec::new();
    loop {
        let room = (cap + 1).saturating_sub(out.len()).min(STEP);
        if room == 0 {
            break;
        }
        charge(room)?;
        let start = out.len();
        out.resize(start + room, 0);
        let n = read_full(&mut decoder, &mut out[start..])
            .map_err(|e| ApiError::bad("body", format!("request body is not valid gzip: {e}")))?;
        out.truncate(start + n);
        if n < room {
            break;
        }
    }
    if out.len() > cap {
        return Err(ApiError::PayloadTooLarge {
            field: None,
            message: format!(
                "decompressed request body exceeds {cap} bytes (the lesser of the \
                 decompressed cap and {MAX_RATIO} times the compressed size)"
            ),
        });
    }
    Ok(out.into())
}

fn read_full(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Parse the envelope; a body that is not JSON or has no `events` array is a 400 naming the
/// position; more than [`MAX_EVENTS`] events is a 413, found before the rest is read.
fn parse(bytes: &[u8]) -> Result<BulkRequest<'_>, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad("body", format!("request body is not UTF-8: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let request: BulkRequest<'_> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = path.trim_end_matches(".?").trim_end_matches('?');
        let inner = e.into_inner();
        if inner.to_string().starts_with(TOO_MANY_EVENTS) {
            return ApiError::PayloadTooLarge {
                field: Some("events".into()),
                message: format!("more than {MAX_EVENTS} events in one request: at most {MAX_EVENTS} are accepted"),
            };
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

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

    fn window() -> Window {
        Window::new(Duration::from_secs(86_400), 3650)
    }

    /// The 422 details of a body, as (index, field).
    fn problems(bytes: &[u8]) -> Vec<(Option<usize>, String)> {
        let request = parse(bytes).unwrap();
        match validate("ns", "r", &request, &window()) {
            Err(ApiError::Unprocessable { details, .. }) => {
                details.into_iter().map(|d| (d.index, d.field)).collect()
            }
            other => panic!("expected 422, got {:?}", other.map(|(_, n)| n)),
        }
    }

    #[test]
    fn a_body_that_is_not_the_envelope_is_400_naming_where() {
        let err = parse(b"{}").unwrap_err();
        assert_eq!(bad_field(err).as_deref(), Some("events"));
        let err = parse(br#"{"events": [{"event_type": "click",}]}"#).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { .. }));
        let err = parse(br#"{"events": {"a": 1}}"#).unwrap_err();
        assert_eq!(bad_field(err).as_deref(), Some("events"));
    }

    #[test]
    fn per_event_problems_are_422_naming_index_and_field() {
        let mut wrong = event();
        wrong["event_type"] = serde_json::json!(5);
        let mut missing = event();
        missing.as_object_mut().unwrap().remove("source");
        let mut bad_time = event();
        bad_time["timestamp"] = "yesterday".into();
        let body = body(serde_json::json!([event(), wrong, missing, bad_time, 7]));
        let found = problems(&body);
        let fields: Vec<&str> = found.iter().map(|(_, f)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "events[1].event_type",
                "events[2].source",
                "events[3].timestamp",
                "events[4]"
            ]
        );
        assert_eq!(found[0].0, Some(1));
    }

    #[test]
    fn more_than_max_events_is_413_without_reading_the_rest() {
        // what follows the element past the limit is not even valid JSON: parsing stops first
        let mut text = String::from("{\"events\": [");
        for _ in 0..=MAX_EVENTS {
            text.push_str("{},");
        }
        text.push_str("{not json");
        let err = parse(text.as_bytes()).unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge { .. }), "{err:?}");
    }

    #[test]
    fn absent_ids_are_derived_and_the_frame_holds_every_event() {
        let bytes = body(serde_json::json!([event(), event()]));
        let request = parse(&bytes).unwrap();
        let (frame, n) = validate("ns", "r", &request, &window()).unwrap();
        assert_eq!((n, frame.events), (2, 2));
        let header = crate::ingest::frame::Header::parse(
            frame.bytes[..crate::ingest::frame::HEADER]
                .try_into()
                .unwrap(),
        )
        .unwrap();
        let batch =
            crate::ingest::frame::decode(&frame.bytes[crate::ingest::frame::HEADER..]).unwrap();
        assert!(header.matches(&frame.bytes[crate::ingest::frame::HEADER..]));
        assert_eq!(batch.events[0].event_id, batch.events[1].event_id);
        assert!(batch.events[0].attributes.is_empty());
    }

    #[test]
    fn oversized_or_deep_attributes_are_refused_before_they_are_parsed() {
        let mut big = event();
        // 50 MB of zeros would be 1.7 GB as serde_json::Value; as raw text it is only measured
        big["attributes"] = serde_json::json!({"z": vec![0; 20_000]});
        let mut deep = event();
        let nested = format!("{}{}", "[".repeat(40), "]".repeat(40));
        deep["attributes"] =
            serde_json::json!({"a": serde_json::from_str::<serde_json::Value>(&nested).unwrap()});
        let mut not_object = event();
        not_object["attributes"] = serde_json::json!([1, 2]);
        let found = problems(&body(serde_json::json!([big, deep, not_object, event()])));
        assert_eq!(
            found,
            [
                (Some(0), "events[0].attributes".to_owned()),
                (Some(1), "events[1].attributes".to_owned()),
                (Some(2), "events[2].attributes".to_owned()),
            ]
        );
    }

    #[test]
    fn depth_counts_nesting_outside_strings() {
        assert_eq!(
            super::super::validate::depth(r#"{"a": [1, {"b": "[[[{"}]}"#),
            3
        );
        assert_eq!(super::super::validate::depth(r#"{"a": "\"[["}"#), 1);
        assert_eq!(super::super::validate::depth("{}"), 1);
    }

    #[test]
    fn invalid_events_are_listed_by_index_and_field() {
        let mut bad = event();
        bad["actor_id"] = "".into();
        bad["timestamp"] = (Utc::now() + chrono::Duration::days(2)).to_rfc3339().into();
        let found = problems(&body(serde_json::json!([event(), bad])));
        let fields: Vec<_> = found.iter().map(|d| d.1.as_str()).collect();
        assert_eq!(fields, ["events[1].actor_id", "events[1].timestamp"]);
        assert!(found.iter().all(|d| d.0 == Some(1)));
    }

    fn no_budget(_: usize) -> Result<(), ApiError> {
        Ok(())
    }

    #[test]
    fn gunzip_enforces_the_cap_and_charges_the_budget_as_it_goes() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[b' '; 200_000]).unwrap();
        let wire = gz.finish().unwrap();
        assert_eq!(gunzip(&wire, 200_000, no_budget).unwrap().len(), 200_000);
        assert!(matches!(
            gunzip(&wire, 199_999, no_budget),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            gunzip(b"not gzip", 100, no_budget),
            Err(ApiError::BadRequest { .. })
        ));
        // a budget of 100 KiB stops the inflation before the 200 KB are held
        let budget = Budget::new(100 * 1024);
        let mut held = None;
        let err = gunzip(&wire, 200_000, |n| Ok(budget.charge(&mut held, n)?)).unwrap_err();
        assert!(matches!(err, ApiError::Busy { .. }), "{err:?}");
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
