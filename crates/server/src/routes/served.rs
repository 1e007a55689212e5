//! [`Served`]: a router that remembers the (method, path) of every route it is given, so
//! the OpenAPI document can be checked against what the server really serves.

use axum::handler::Handler;
use axum::routing::{get, post};
use axum::Router;

/// A router under construction and the (method, path template) of each of its routes.
pub(crate) struct Served<St> {
    /// The routes so far.
    pub(crate) router: Router<St>,
    /// `("GET" | "POST", path)` of each route, in the order given (read by the OpenAPI test).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) routes: Vec<(&'static str, &'static str)>,
}

impl<St: Clone + Send + Sync + 'static> Served<St> {
    /// No routes yet.
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    /// Serve `GET path` with `handler`.
    pub(crate) fn get<H: Handler<T, St>, T: 'static>(
        mut self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.router = self.router.route(path, get(handler));
        self.routes.push(("GET", path));
        self
    }

    /// Serve `POST path` with `handler`.
    pub(crate) fn post<H: Handler<T, St>, T: 'static>(
        mut self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.router = self.router.route(path, post(handler));
        self.routes.push(("POST", path));
        self
    }
}
