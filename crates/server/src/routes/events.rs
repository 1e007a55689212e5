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
mod tests;
