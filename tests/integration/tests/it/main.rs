//! End-to-end tests: one binary, one module per area.

mod api;
mod cli;
mod crash;
mod pipeline;
