//! [`ApiError`]: every way a request fails, and the one JSON body shape they all answer with:
//! `{"error": "...", "field": "..."?, "details": [...]?}`.

use std::any::Any;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// A failed request. 4xx bodies name the field (and the event's index) at fault; 5xx bodies
/// hide internals, which are logged instead.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 401: no API key, or one the server does not know.
    Unauthorized(String),
    /// 400: the request cannot be read; `field` names the part at fault.
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// 403: the key is known but may not do this (a tenant key on an operator action or
    /// another namespace, or any key on a read-only operations API).
    Forbidden(String),
    /// 404: no such route.
    NotFound,
    /// 404: the route exists, the thing it names does not (the message says what).
    Missing(String),
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 413: the body (or the number of events) is over a limit.
    PayloadTooLarge {
        field: Option<String>,
        message: String,
    },
    /// 415: a `Content-Encoding` other than gzip or identity, or a `Content-Type` other than JSON.
    UnsupportedEncoding(String),
    /// 422: the request was read but its events are invalid.
    Unprocessable {
        field: Option<String>,
        details: Vec<Detail>,
    },
    /// 422: a path, query or body value of the operations API is invalid; `field` names it.
    Invalid { field: String, message: String },
    /// 503: a dependency is down; the message says which and is safe to show.
    Unavailable(String),
    /// 503 with `Retry-After`: the server is at a capacity limit (the ingestion log full or
    /// unable to write, the in-flight budget spent); nothing was accepted, the client retries.
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// 503 with `Retry-After`: a search ran past its deadline (the `Duration`) and the database
    /// cancelled it.
    SearchTimeout(Duration),
    /// 500: a bug or an unexpected failure. Logged; the body says only "internal error".
    Internal(anyhow::Error),
}

/// One invalid field of one event.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Detail {
    /// The event's position in `events`, when the problem is one event's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index: Option<usize>,
    /// The field's path, such as `events[3].event_type`.
    pub(crate) field: String,
    /// What is wrong with it.
    pub(crate) message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [Detail]>,
}

impl ApiError {
    /// A 400 naming `field`.
    pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 422 naming `field`.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with a 400 naming a field turned into a 422 naming it: the operations
    /// API answers 422 for every bad value, while it shares the query parsers of the older
    /// routes (which answer 400).
    pub(crate) fn unprocessable(self) -> Self {
        match self {
            Self::BadRequest {
                field: Some(field),
                message,
            } => Self::Invalid { field, message },
            other => other,
        }
    }

    /// A 503 with `Retry-After: retry_after_secs`.
    pub(crate) fn busy(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::Busy {
            message: message.into(),
            retry_after_secs,
        }
    }

    /// A 500 from any error.
    pub(crate) fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } | Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) | Self::Busy { .. } | Self::SearchTimeout(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let timed_out;
        let (error, field, details) = match &self {
            Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::Missing(m)
            | Self::UnsupportedEncoding(m)
            | Self::Unavailable(m) => (m.as_str(), None, None),
            Self::Invalid { field, message } => (message.as_str(), Some(field.as_str()), None),
            Self::BadRequest { field, message } | Self::PayloadTooLarge { field, message } => {
                (message.as_str(), field.as_deref(), None)
            }
            Self::Busy { message, .. } => (message.as_str(), None, None),
            Self::SearchTimeout(limit) => {
                timed_out = format!(
                    "the search took too long (over {limit:?}) and was cancelled: narrow `q` or \
                     retry later"
                );
                (timed_out.as_str(), None, None)
            }
            Self::NotFound => ("no such route", None, None),
            Self::MethodNotAllowed => ("method not allowed on this route", None, None),
            Self::Unprocessable { field, details } => {
                ("invalid events", field.as_deref(), Some(details.as_slice()))
            }
            Self::Internal(e) => {
                tracing::error!(error.cause_chain = ?e, error.message = %e, "request failed");
                ("internal error", None, None)
            }
        };
        if let Self::Unavailable(m) = &self {
            tracing::warn!(error.message = %m, "answering 503");
        }
        let mut response = (
            status,
            Json(Body {
                error,
                field,
                details,
            }),
        )
            .into_response();
        if let Self::Busy {
            message,
            retry_after_secs,
        } = &self
        {
            tracing::warn!(error.message = %message, "answering 503 with Retry-After");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::SearchTimeout(limit) = &self {
            // as long again as the search was given, in whole seconds (at least 1)
            let seconds = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

impl From<conveyor_handlers::Error> for ApiError {
    fn from(e: conveyor_handlers::Error) -> Self {
        match e {
            conveyor_handlers::Error::InvalidQuery(message) => Self::BadRequest {
                field: named_parameter(&message),
                message: format!("invalid query: {message}"),
            },
            conveyor_handlers::Error::SearchTimeout(limit) => {
                tracing::warn!(timeout = ?limit, "search cancelled at its deadline");
                Self::SearchTimeout(limit)
            }
            conveyor_handlers::Error::Database(e) if crate::outage::is_outage(&e) => {
                tracing::warn!(error.message = %e, "database unavailable");
                Self::Unavailable("database unavailable".into())
            }
            other => Self::internal(other),
        }
    }
}

/// The first query parameter an `InvalidQuery` message mentions, if any
/// (`"limit must be 1..=1000"`, `"from 2026-02-01 is after to 2026-01-01"`,
/// `"window from..to is wider than 31 days"`).
fn named_parameter(message: &str) -> Option<String> {
    const PARAMS: [&str; 7] = ["from", "to", "limit", "cursor", "q", "event_type", "source"];
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|word| PARAMS.contains(word))
        .map(str::to_owned)
}

/// The 500 answered when a route panics (the panic is logged, its message is not shown).
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic");
    ApiError::Internal(anyhow::anyhow!("route panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_query_messages_name_their_parameter() {
        assert_eq!(
            named_parameter("limit must be 1..=1000").as_deref(),
            Some("limit")
        );
        assert_eq!(
            named_parameter("`to` is before `from`").as_deref(),
            Some("to")
        );
        assert_eq!(
            named_parameter("window from..to is wider than 31 days").as_deref(),
            Some("from")
        );
        assert_eq!(named_parameter("window too wide"), None);
    }

    #[tokio::test]
    async fn a_search_timeout_is_503_with_retry_after_saying_it_took_too_long() {
        let timeout = Duration::from_millis(5_500);
        let response =
            ApiError::from(conveyor_handlers::Error::SearchTimeout(timeout)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "6");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("took too long (over 5.5s)"), "{body}");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response = ApiError::internal(anyhow::anyhow!("password=hunter2")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("hunter2"));
    }
}
