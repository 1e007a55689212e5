//! [`OpsCaller`]: who calls the operations API and on which namespace's store.
//!
//! An operator key (`--operator-key`) has full access, on the server's outbox namespace or
//! the one `?namespace=` names; a tenant key (`--api-key`) reads its own namespace only.
//! No key or an unknown one is a 401; a tenant naming another namespace, or any change a
//! tenant asks for or that a `--ops-read-only` server is asked for, is a 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use conveyor_handlers::PipelineStore;
use serde::Serialize;

use crate::api_error::ApiError;
use crate::auth::presented;
use crate::routes::Params;
use crate::state::AppState;

/// What a key may do on the operations API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    /// An operator key: every route, any namespace.
    Operator,
    /// A tenant's API key: the read routes, its own namespace.
    Tenant,
}

/// The caller of an operations route: its role, the store scoped to the namespace it works
/// on, and the query parameters.
pub(crate) struct OpsCaller<S> {
    /// The store of [`namespace`](Self::namespace).
    pub(crate) store: S,
    /// The outbox namespace the request reads or changes.
    pub(crate) namespace: String,
    /// What the key may do.
    pub(crate) role: Role,
    /// Whether the server serves the operations API read-only.
    pub(crate) server_read_only: bool,
    /// The query parameters (`namespace` among them).
    pub(crate) params: Params,
}

impl<S> OpsCaller<S> {
    /// Whether this caller may only read: a tenant, or any caller of a read-only server.
    pub(crate) fn read_only(&self) -> bool {
        self.server_read_only || self.role == Role::Tenant
    }

    /// A 403 unless this caller may change things (pause, replay, purge, skip, cancel).
    pub(crate) fn may_change(&self) -> Result<(), ApiError> {
        if self.server_read_only {
            Err(ApiError::Forbidden(
                "the operations API is read-only (--ops-read-only)".into(),
            ))
        } else if self.role == Role::Tenant {
            Err(ApiError::Forbidden(
                "a tenant key may only read: changes need an operator key".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Refuse query parameters outside `allowed` (and `namespace`) with a 422 naming the first.
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let mut all = vec!["namespace"];
        all.extend_from_slice(allowed);
        self.params.only(&all).map_err(ApiError::unprocessable)
    }
}

impl<S: PipelineStore> FromRequestParts<AppState<S>> for OpsCaller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let key = presented(parts)?;
        let (role, own) = if state.operator_keys.tenant(key).is_some() {
            (Role::Operator, state.store.namespace().to_owned())
        } else if let Some(tenant) = state.keys.tenant(key) {
            (Role::Tenant, tenant.to_owned())
        } else {
            return Err(ApiError::Unauthorized("unknown API key".into()));
        };
        let params = Params::from_request_parts(parts, state)
            .await
            .map_err(ApiError::unprocessable)?;
        let namespace = params.0.get("namespace").cloned().unwrap_or(own.clone());
        if role == Role::Tenant && namespace != own {
            return Err(ApiError::Forbidden(format!(
                "a tenant key reads only its own namespace, not {namespace:?}"
            )));
        }
        let store = state
            .store
            .scoped(&namespace)
            .map_err(|e| ApiError::invalid("namespace", format!("invalid `namespace`: {e}")))?;
        Ok(Self {
            store,
            namespace,
            role,
            server_read_only: state.ops_read_only,
            params,
        })
    }
}
