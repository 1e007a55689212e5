//! The API's routes, one file per area, [`Params`]: query-string parsing whose every
//! failure is a 400 naming the parameter, and [`TenantRead`]: what every read route takes.
//!
//! - `events` — `POST /v1/events/bulk`, into the ingestion log; `validate` — its events.
//! - `query` — analytics (daily, summary, event types; TTL-cached) and raw events.
//! - `search` — keyword and similarity search.
//! - `health` — `/healthz` and `/healthz/detailed`.
//! - `ops` — the operations API: queues, dead letters, replay, cancel (operator and tenant keys).

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use conveyor_handlers::PipelineStore;

use crate::api_error::ApiError;
use crate::auth::Tenant;
use crate::state::AppState;

pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod ops;
pub(crate) mod query;
pub(crate) mod search;
pub(crate) mod served;
pub(crate) mod validate;

/// What every read route takes: the app's state, the API key's tenant (extracted first: a
/// request without a valid key is a 401 whatever its query), and the query parameters.
pub(crate) struct TenantRead<S> {
    pub(crate) state: AppState<S>,
    /// The tenant namespace of the request's API key.
    pub(crate) namespace: String,
    pub(crate) params: Params,
}

impl<S: PipelineStore> FromRequestParts<AppState<S>> for TenantRead<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let Tenant(namespace) = Tenant::from_request_parts(parts, state).await?;
        let params = Params::from_request_parts(parts, state).await?;
        Ok(TenantRead {
            state: state.clone(),
            namespace,
            params,
        })
    }
}

/// A request's query parameters, each given at most once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad("query", format!("malformed query string: {e}")))?;
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(ApiError::bad(
                    &name,
                    format!("`{name}` is given more than once"),
                ));
            }
            map.insert(name, value);
        }
        Ok(Params(map))
    }
}

impl Params {
    /// Refuse parameters outside `allowed` (a typo such as `form=` would otherwise be ignored).
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad(
                k,
                format!(
                    "unknown query parameter `{k}`: expected one of {}",
                    allowed.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A text parameter; empty counts as absent.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// A `YYYY-MM-DD` parameter.
    pub(crate) fn date(&self, name: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.parse(name, "a date as YYYY-MM-DD", |v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()
        })
    }

    /// An RFC 3339 timestamp parameter.
    pub(crate) fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.parse(
            name,
            "an RFC 3339 timestamp such as 2026-01-31T12:00:00Z",
            |v| {
                DateTime::parse_from_rfc3339(v)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            },
        )
    }

    /// `limit`, `default` when absent, refused outside `1..=max`.
    pub(crate) fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        let limit = self
            .parse("limit", &format!("an integer from 1 to {max}"), |v| {
                v.parse::<u32>().ok()
            })?
            .unwrap_or(default);
        if (1..=max).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::bad(
                "limit",
                format!("`limit` must be an integer from 1 to {max}"),
            ))
        }
    }

    /// The decoded `cursor`, as written by [`encode_cursor`].
    pub(crate) fn cursor<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        self.parse("cursor", "a `next_cursor` returned by this route", |v| {
            let json = URL_SAFE_NO_PAD.decode(v).ok()?;
            serde_json::from_slice(&json).ok()
        })
    }

    /// The parameters as one canonical string (sorted by name), for cache keys.
    pub(crate) fn canonical(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    fn parse<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.0.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| {
                ApiError::bad(name, format!("`{name}` must be {expected}, got {v:?}"))
            }),
        }
    }
}

/// An opaque, URL-safe pagination cursor for `position`.
pub(crate) fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// A 200 with an already-serialized JSON body.
pub(crate) fn json_body(body: bytes::Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Serialize `value` as a response body.
pub(crate) fn to_body<T: Serialize>(value: &T) -> Result<bytes::Bytes, ApiError> {
    serde_json::to_vec(value)
        .map(Into::into)
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn field(err: ApiError) -> String {
        match err {
            ApiError::BadRequest { field, .. } => field.unwrap(),
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_names_cursor() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let c = encode_cursor(&(day, "click", "web"));
        let back: Option<(NaiveDate, String, String)> = params(&[("cursor", &c)]).cursor().unwrap();
        assert_eq!(back, Some((day, "click".into(), "web".into())));
        let err = params(&[("cursor", "!!")])
            .cursor::<(NaiveDate, String, String)>()
            .unwrap_err();
        assert_eq!(field(err), "cursor");
    }

    #[test]
    fn bad_values_name_their_parameter() {
        assert_eq!(
            field(params(&[("from", "2026-13-01")]).date("from").unwrap_err()),
            "from"
        );
        assert_eq!(
            field(params(&[("to", "yesterday")]).time("to").unwrap_err()),
            "to"
        );
        assert_eq!(
            field(params(&[("limit", "0")]).limit(100, 1000).unwrap_err()),
            "limit"
        );
        assert_eq!(
            field(params(&[("limit", "x")]).limit(100, 1000).unwrap_err()),
            "limit"
        );
        assert_eq!(
            field(params(&[("form", "x")]).only(&["from"]).unwrap_err()),
            "form"
        );
        assert_eq!(params(&[]).limit(100, 1000).unwrap(), 100);
    }
}
