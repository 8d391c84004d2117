//! The `hookwarden` binary: argument parsing only; the work is in the library.

use clap::Parser;
use hookwarden::cli::{Cli, Command};
use std::process::ExitCode;

/// With the `jemalloc` feature (the container image, the benchmarks), jemalloc allocates;
/// its settings are built in from .cargo/config.toml. Without it, glibc's malloc.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::CheckConfig(arg) => hookwarden::cli::check_config(arg.config.as_deref()),
        Command::Serve(arg) => hookwarden::cli::serve(
            arg.config.config.as_deref(),
            hookwarden::RunOptions {
                watch_config: arg.watch_config,
            },
        ),
        Command::Events { config, command } => {
            hookwarden::cli::events_main(config.config.as_deref(), command)
        }
        Command::Simulate(args) => hookwarden::cli::simulate::main(args),
        Command::Reconcile { config, args } => {
            hookwarden::cli::reconcile_main(config.config.as_deref(), args)
        }
        Command::Okta { config, command } => {
            hookwarden::cli::okta_main(config.config.as_deref(), command)
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
