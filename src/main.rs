//! The binary: parse the command line, set up logging, dispatch. See `run.rs` for the work.

use clap::Parser;
use enginelabs_2api::cli::{Cli, Command};
use enginelabs_2api::config::Config;
use enginelabs_2api::run;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // `.env` fills in what the environment does not set; flags win over both.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let level = match cli.command {
        Some(Command::Doctor(_)) => "warn",
        _ => "info",
    };
    run::init_tracing(cli.config.log_format, level);
    let result = match cli.command {
        None | Some(Command::Serve) => match Config::from_args(&cli.config) {
            Ok(config) => run::serve(config).await,
            Err(e) => Err(e.to_string().into()),
        },
        Some(Command::Demo(demo)) => run::demo(cli.config, demo).await,
        Some(Command::Simulate(args)) => run::simulate(args).await,
        Some(Command::Bench(args)) => enginelabs_2api::bench::run(args).await,
        Some(Command::Doctor(args)) => match Config::from_args(&cli.config) {
            Ok(config) => match enginelabs_2api::doctor::run(config, args).await {
                Ok(true) => Ok(()),
                Ok(false) => return std::process::ExitCode::FAILURE,
                Err(e) => Err(e),
            },
            Err(e) => Err(e.to_string().into()),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// jemalloc with its background thread, which hands freed memory back to the OS (after ~10 s of
/// decay) even when the process is idle. Chosen by `bench --scenario many-messages` (README,
/// "Memory"): after a burst of 16 requests of 100,000 messages, glibc's malloc kept 154 MB
/// (baseline 58 MB), mimalloc 152 MB, jemalloc without the thread 114 MB, jemalloc with it
/// 57 MB. Its build script costs ~32 CPU-s once per profile.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
