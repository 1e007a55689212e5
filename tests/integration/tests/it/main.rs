//! End-to-end tests: one binary, one module per area.

mod api;
mod bench;
mod cli;
mod crash;
mod pipeline;
