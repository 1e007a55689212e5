//! The `conveyor` binary, built inside this package so its tests can start it as a child
//! process (`CARGO_BIN_EXE_*` exists only for a package's own binaries). It calls exactly
//! what `crates/server/src/main.rs` calls.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    conveyor_server::cli_main(std::env::args_os()).await
}
