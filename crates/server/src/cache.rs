//! [`ResponseCache`]: a TTL cache of analytics responses, keyed by tenant, route and the
//! request's resolved parameters, so repeated dashboard polls do not re-run the same query.
//!
//! Bounded by bytes, not entries: at most [`TOTAL_BYTES`] of keys and bodies in all. Each
//! tenant (the namespaces of the API keys, known at start-up) has a cache of its own with an
//! equal share of that total, so a tenant evicts only its own responses, however much it
//! queries, and a lookup never sees another tenant's. A response larger than
//! [`MAX_ENTRY_BYTES`] (or than the tenant's share) is served but not cached.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;

/// Bytes of cached responses (keys and bodies) in all, shared equally by the tenants.
pub(crate) const TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// The largest response cached: a bigger one would crowd out a tenant's other responses.
pub(crate) const MAX_ENTRY_BYTES: u64 = 1024 * 1024;

/// Cached JSON responses, one bounded cache per tenant. A zero TTL disables caching.
#[derive(Clone)]
pub(crate) struct ResponseCache {
    /// Tenant namespace → its cache; empty when disabled.
    tenants: HashMap<String, Cache<CacheKey, Bytes>>,
    /// The largest entry (key and body) cached.
    max_entry: u64,
}

/// (route, normalised parameters): the tenant picks the cache.
type CacheKey = (&'static str, String);

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("enabled", &!self.tenants.is_empty())
            .field("tenants", &self.tenants.len())
            .finish()
    }
}

impl ResponseCache {
    /// A cache of `ttl` (zero disables it) for the tenant `namespaces` (repeats count once),
    /// [`TOTAL_BYTES`] in all.
    pub(crate) fn new<'a>(ttl: Duration, namespaces: impl IntoIterator<Item = &'a String>) -> Self {
        Self::with_capacity(ttl, namespaces, TOTAL_BYTES)
    }

    fn with_capacity<'a>(
        ttl: Duration,
        namespaces: impl IntoIterator<Item = &'a String>,
        total_bytes: u64,
    ) -> Self {
        if ttl.is_zero() {
            return Self {
                tenants: HashMap::new(),
                max_entry: 0,
            };
        }
        let mut names: Vec<&String> = namespaces.into_iter().collect();
        names.sort();
        names.dedup();
        let share = total_bytes / u64::try_from(names.len().max(1)).unwrap_or(u64::MAX);
        let tenants = names
            .into_iter()
            .map(|ns| {
                let cache = Cache::builder()
                    .max_capacity(share)
                    .weigher(|key: &CacheKey, body: &Bytes| {
                        u32::try_from(weight(key, body)).unwrap_or(u32::MAX)
                    })
                    .time_to_live(ttl)
                    .build();
                (ns.clone(), cache)
            })
            .collect();
        Self {
            tenants,
            max_entry: MAX_ENTRY_BYTES.min(share),
        }
    }

    /// The cached response body (serialized JSON) for the key, or `compute`'s, cached when
    /// it succeeds and is not too large.
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
        let Some(cache) = self.tenants.get(namespace) else {
            return compute.await;
        };
        let key = (route, params);
        if let Some(hit) = cache.get(&key).await {
            return Ok(hit);
        }
        let value = compute.await?;
        if weight(&key, &value) <= self.max_entry {
            cache.insert(key, value.clone()).await;
        }
        Ok(value)
    }

    /// Bytes held for `namespace`, after pending evictions ran.
    #[cfg(test)]
    async fn bytes_of(&self, namespace: &str) -> u64 {
        let cache = &self.tenants[namespace];
        cache.run_pending_tasks().await;
        cache.weighted_size()
    }
}

/// What an entry costs: its key's and its body's bytes.
fn weight(key: &CacheKey, body: &Bytes) -> u64 {
    (key.0.len() + key.1.len() + body.len()) as u64
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const TTL: Duration = Duration::from_secs(600);

    fn names(ns: &[&str]) -> Vec<String> {
        ns.iter().map(|s| (*s).to_owned()).collect()
    }

    /// `get_or_try` of `body` under (`ns`, `params`), counting computations in `computed`.
    async fn fetch(
        cache: &ResponseCache,
        ns: &str,
        params: &str,
        body: &Bytes,
        computed: &AtomicUsize,
    ) {
        let got = cache
            .get_or_try(ns, "daily", params.to_owned(), async {
                computed.fetch_add(1, Ordering::Relaxed);
                Ok::<_, Infallible>(body.clone())
            })
            .await
            .unwrap();
        assert_eq!(&got, body);
    }

    #[tokio::test]
    async fn the_cache_is_bounded_by_bytes() {
        let cache = ResponseCache::new(TTL, &names(&["acme"]));
        // 200 bodies of 1 MiB less their key: 200 MiB asked of a 64 MiB cache
        let body = Bytes::from(vec![b'x'; 1024 * 1024 - 16]);
        let computed = AtomicUsize::new(0);
        for i in 0..200 {
            fetch(&cache, "acme", &format!("{i:03}"), &body, &computed).await;
        }
        assert!(cache.bytes_of("acme").await <= TOTAL_BYTES);
        for i in 0..200 {
            fetch(&cache, "acme", &format!("{i:03}"), &body, &computed).await;
        }
        let recomputed = computed.load(Ordering::Relaxed) - 200;
        assert!(
            recomputed >= 200 - 64,
            "only {recomputed} of 200 were evicted"
        );
    }

    #[tokio::test]
    async fn a_tenant_holds_only_its_share_and_evicts_only_its_own() {
        let cache = ResponseCache::new(TTL, &names(&["acme", "globex"]));
        let small = Bytes::from_static(b"{\"globex\":1}");
        let computed = AtomicUsize::new(0);
        fetch(&cache, "globex", "q", &small, &computed).await;
        // acme asks for all 64 MiB
        let body = Bytes::from(vec![b'x'; 1024 * 1024 - 16]);
        for i in 0..64 {
            fetch(&cache, "acme", &format!("{i:03}"), &body, &computed).await;
        }
        assert!(cache.bytes_of("acme").await <= TOTAL_BYTES / 2);
        let before = computed.load(Ordering::Relaxed);
        fetch(&cache, "globex", "q", &small, &computed).await;
        assert_eq!(
            computed.load(Ordering::Relaxed),
            before,
            "globex's entry was evicted"
        );
    }

    #[tokio::test]
    async fn tenants_never_read_each_others_responses() {
        let cache = ResponseCache::new(TTL, &names(&["acme", "globex"]));
        let computed = AtomicUsize::new(0);
        let acme = Bytes::from_static(b"acme");
        fetch(&cache, "acme", "q", &acme, &computed).await;
        let globex = Bytes::from_static(b"globex");
        fetch(&cache, "globex", "q", &globex, &computed).await;
        fetch(&cache, "acme", "q", &acme, &computed).await;
        assert_eq!(computed.load(Ordering::Relaxed), 2);
        // an unknown tenant is never cached
        fetch(&cache, "initech", "q", &acme, &computed).await;
        fetch(&cache, "initech", "q", &acme, &computed).await;
        assert_eq!(computed.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn an_oversized_response_is_served_but_not_cached() {
        let cache = ResponseCache::new(TTL, &names(&["acme"]));
        let big = Bytes::from(vec![b'x'; MAX_ENTRY_BYTES as usize + 1]);
        let computed = AtomicUsize::new(0);
        fetch(&cache, "acme", "q", &big, &computed).await;
        fetch(&cache, "acme", "q", &big, &computed).await;
        assert_eq!(computed.load(Ordering::Relaxed), 2);
        assert_eq!(cache.bytes_of("acme").await, 0);
    }

    #[tokio::test]
    async fn a_zero_ttl_disables_it() {
        let cache = ResponseCache::with_capacity(Duration::ZERO, &names(&["acme"]), 1024);
        let computed = AtomicUsize::new(0);
        let body = Bytes::from_static(b"{}");
        fetch(&cache, "acme", "q", &body, &computed).await;
        fetch(&cache, "acme", "q", &body, &computed).await;
        assert_eq!(computed.load(Ordering::Relaxed), 2);
    }
}
