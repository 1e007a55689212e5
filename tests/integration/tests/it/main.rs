//! End-to-end tests: one binary, one module per area.

mod api;
mod bench;
mod cli;
mod cli_admin;
mod crash;
mod pipeline;
