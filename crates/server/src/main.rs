//! `conveyor`: everything happens in [`conveyor_server::cli_main`], so tests run the same code.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    conveyor_server::cli_main(std::env::args_os()).await
}
