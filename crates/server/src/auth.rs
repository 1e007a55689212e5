//! [`Tenant`]: the `Authorization: Bearer <key>` extractor that maps an API key to its
//! tenant namespace. Every `/v1` route takes one, so nothing is read or written outside it.
//!
//! [`Keys`] finds the key in constant time: the presented key's SHA-256 is compared with
//! every configured key's, all of them, with `subtle`, so the response time tells nothing
//! about how much of a key was right or which key it was close to.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest as _, Sha256};
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};

use crate::api_error::ApiError;

/// The tenant namespace of the request's API key.
#[derive(Debug, Clone)]
pub(crate) struct Tenant(pub(crate) String);

/// The configured API keys, as SHA-256 digests, and their tenant namespaces.
pub(crate) struct Keys {
    /// (digest of the key, namespace), one per key.
    entries: Vec<([u8; 32], String)>,
}

/// Not derived: only how many keys there are.
impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("count", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// The keys of `api_keys` (key → namespace).
    pub(crate) fn new(api_keys: &HashMap<String, String>) -> Self {
        let entries = api_keys
            .iter()
            .map(|(key, namespace)| (digest(key), namespace.clone()))
            .collect();
        Self { entries }
    }

    /// The namespace of `presented`, if it is one of the keys. Takes the same time whichever
    /// key matches, if any: every key is compared, in constant time, without an early exit.
    pub(crate) fn tenant(&self, presented: &str) -> Option<&str> {
        let presented = digest(presented);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, (key, _)) in self.entries.iter().enumerate() {
            let matches = key.ct_eq(&presented);
            index.conditional_assign(&(i as u64), matches);
            found |= matches;
        }
        let index = usize::try_from(index).ok()?;
        bool::from(found).then(|| self.entries[index].1.as_str())
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key of an `Authorization: Bearer <key>` header value, if it is one.
pub(crate) fn bearer(header: &axum::http::HeaderValue) -> Option<&str> {
    let (scheme, key) = header.to_str().ok()?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// The key of the request's `Authorization: Bearer <key>` header: 401 when it is missing
/// or malformed.
pub(crate) fn presented(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("missing API key: send `Authorization: Bearer <key>`".into())
    })?;
    bearer(header).ok_or_else(|| {
        ApiError::Unauthorized("malformed Authorization header: expected `Bearer <key>`".into())
    })
}

/// Any router state that holds the tenants' [`Keys`] (`FromRef`), so this module does not
/// depend on the state's type.
impl<S: Send + Sync> FromRequestParts<S> for Tenant
where
    Arc<Keys>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let keys = Arc::<Keys>::from_ref(state);
        keys.tenant(presented(parts)?)
            .map(|ns| Tenant(ns.to_owned()))
            .ok_or_else(|| ApiError::Unauthorized("unknown API key".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Keys {
        Keys::new(
            &pairs
                .iter()
                .map(|(k, ns)| ((*k).to_owned(), (*ns).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn each_key_finds_its_tenant_and_nothing_else_does() {
        let keys = keys(&[("k1", "acme"), ("k2==", "globex"), ("k3", "initech")]);
        assert_eq!(keys.tenant("k1"), Some("acme"));
        assert_eq!(keys.tenant("k2=="), Some("globex"));
        assert_eq!(keys.tenant("k3"), Some("initech"));
        for wrong in ["", "k", "k2", "k2=", "K1", "k1 ", "k3k3"] {
            assert_eq!(keys.tenant(wrong), None, "{wrong:?}");
        }
        assert_eq!(Keys::new(&HashMap::new()).tenant("k1"), None);
    }

    #[test]
    fn debug_shows_no_key() {
        let shown = format!("{:?}", keys(&[("s3cret", "acme")]));
        assert!(
            !shown.contains("s3cret") && !shown.contains("acme"),
            "{shown}"
        );
    }
}
