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
use conveyor_handlers::{EventsReceived, PipelineStore};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use uuid::Uuid;

use crate::api_error::ApiError;
use crate::app::{AppState, REQUEST_ID};
use crate::auth::Tenant;
use crate::routes::committer::Failure;
use crate::settings::Limits;

use super::validate::{validate, BulkRequest, Window};

/// Most events per spooled `EventsReceived`.
const CHUNK: usize = 1_000;
/// Longest `X-Request-ID` carried into the pipeline.
const MAX_REQUEST_ID: usize = 128;

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
