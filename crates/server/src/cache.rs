//! [`ResponseCache`]: a TTL cache of analytics responses, keyed by tenant, route and the
//! request's resolved parameters, so repeated dashboard polls do not re-run the same query.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;

/// How many responses are kept at most.
const CAPACITY: u64 = 10_000;

/// Cached JSON responses. A zero TTL disables caching.
#[derive(Clone)]
pub(crate) struct ResponseCache {
    inner: Option<Cache<CacheKey, Bytes>>,
}

/// (tenant namespace, route, normalised parameters).
type CacheKey = (String, &'static str, String);

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl ResponseCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        let inner = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build()
        });
        Self { inner }
    }

    /// The cached response body (serialized JSON) for the key, or `compute`'s, cached when
    /// it succeeds.
    pub(crate) async fn get_or_try<E, F>(
        &self,
        namespace: &str,
        route: &'static str,
        params: String,
        compute: F,
    ) -> Result<Bytes, E>
    where
        F: Future<Output = Result<Bytes, E>>,
    {
        let Some(cache) = &self.inner else {
            return compute.await;
        };
        let key = (namespace.to_owned(), route, params);
        if let Some(hit) = cache.get(&key).await {
            return Ok(hit);
        }
        let value = compute.await?;
        cache.insert(key, value.clone()).await;
        Ok(value)
    }
}
