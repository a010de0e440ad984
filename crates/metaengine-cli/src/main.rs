//! `metaengine`: the command-line interface and the HTTP server (`serve`) of the metadata engine.
//!
//! Every command opens the database named by `--database-url` / `METAENGINE_DATABASE_URL`
//! (default: a SQLite file in the data directory, created on first use), applies the embedded
//! migrations unless `--no-migrate`, and acts as a platform admin: whoever holds the database
//! credentials administers the engine. Errors go to stderr with a non-zero exit code.

mod cli;
mod commands;
mod config;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: the server's request path makes many small
/// allocations, which glibc's malloc served at a quarter of the process's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("METAENGINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // `snapshot diff`: something would change (printed already).
        Err(e) if e.downcast_ref::<commands::Differs>().is_some() => ExitCode::from(2),
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
