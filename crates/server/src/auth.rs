//! [`Tenant`]: the `Authorization: Bearer <key>` extractor that maps an API key to its
//! tenant namespace. Every `/v1` route takes one, so nothing is read or written outside it.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::api_error::ApiError;
use crate::state::AppState;

/// The tenant namespace of the request's API key.
#[derive(Debug, Clone)]
pub(crate) struct Tenant(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<AppState<S>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("missing API key: send `Authorization: Bearer <key>`".into())
        })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, key) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "malformed Authorization header: expected `Bearer <key>`".into(),
                )
            })?;
        state
            .keys
            .get(key)
            .map(|ns| Tenant(ns.clone()))
            .ok_or_else(|| ApiError::Unauthorized("unknown API key".into()))
    }
}
