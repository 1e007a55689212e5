//! The operator dashboard: `GET /` (the page) and `GET /assets/{*path}` (its scripts and
//! style sheet), static files embedded in the binary with `include_str!`.
//!
//! The page is public (it holds no data); it asks for an API key and calls the operations
//! API (`/v1/ops`, `/v1/queues`, …) and the analytics routes with it. Nothing is fetched
//! from another origin: the Content-Security-Policy allows this origin only, so neither a
//! remote script nor an injected inline one runs. Each answer carries an `ETag` (a digest of
//! the file) and `Cache-Control: no-cache`, so a browser revalidates and a new binary's assets
//! are picked up at once, while an unchanged file costs a 304.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest as _, Sha256};

use crate::api_error::ApiError;

/// Only this origin, for every kind of resource; no inline script or style, no framing, no
/// form posts, no `<base>` rewriting.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its bytes, content type and `ETag`.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header");
        Self {
            body,
            content_type,
            etag,
        }
    }

    /// 200 with the file, or 304 when `If-None-Match` names its `ETag`.
    fn respond(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .any(|t| t.trim() == "*" || t.trim().as_bytes() == self.etag.as_bytes())
            });
        let headers = [
            (header::ETAG, self.etag.clone()),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        let content_type = [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        )];
        (headers, content_type, self.body).into_response()
    }
}

const JS: &str = "text/javascript; charset=utf-8";

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../assets/index.html"),
        "text/html; charset=utf-8",
    )
});

/// The files under `/assets/`: the entry script, its two modules, the style sheet.
static ASSETS: LazyLock<[(&str, Asset); 4]> = LazyLock::new(|| {
    [
        ("app.js", Asset::new(include_str!("../assets/app.js"), JS)),
        ("dom.js", Asset::new(include_str!("../assets/dom.js"), JS)),
        (
            "charts.js",
            Asset::new(include_str!("../assets/charts.js"), JS),
        ),
        (
            "app.css",
            Asset::new(include_str!("../assets/app.css"), "text/css; charset=utf-8"),
        ),
    ]
});

fn named(file: &str) -> Option<&'static Asset> {
    ASSETS
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, a)| a)
}

/// The dashboard's routes, for any router state (they read none).
pub(crate) fn router<T: Clone + Send + Sync + 'static>() -> Router<T> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    INDEX.respond(&headers)
}

/// One of [`ASSETS`]; any other name is a 404.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match named(&file) {
        Some(asset) => asset.respond(&headers),
        None => ApiError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_embedded_same_origin_assets() {
        for asset in ["/assets/app.js", "/assets/app.css"] {
            assert!(INDEX.body.contains(asset), "index.html links {asset}");
        }
        let script = named("app.js").expect("app.js").body;
        for module in ["./dom.js", "./charts.js"] {
            assert!(script.contains(module) && named(&module[2..]).is_some());
        }
        let bodies = ASSETS.iter().map(|(_, a)| a.body);
        for body in bodies.chain([INDEX.body]) {
            // the SVG namespace is a name, not a resource
            let body = body.replace("http://www.w3.org/2000/svg", "");
            assert!(!body.contains("http://") && !body.contains("https://"));
            assert!(!body.contains("//cdn") && !body.contains("@import"));
        }
    }

    #[test]
    fn a_matching_if_none_match_is_a_304() {
        let (script, style) = (named("app.js").unwrap(), named("app.css").unwrap());
        let mut request = HeaderMap::new();
        assert_eq!(script.respond(&request).status(), StatusCode::OK);
        request.insert(header::IF_NONE_MATCH, script.etag.clone());
        assert_eq!(script.respond(&request).status(), StatusCode::NOT_MODIFIED);
        request.insert(header::IF_NONE_MATCH, style.etag.clone());
        assert_eq!(script.respond(&request).status(), StatusCode::OK);
    }
}
