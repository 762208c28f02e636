//! The command line: `serve` (the default), `demo`, `simulate`, `bench`, `doctor`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::ConfigArgs;

/// OpenAI-compatible API for the cto.new (EngineLabs) web agent.
///
/// Every setting can also come from the environment or a `.env` file in the working directory
/// (flags win over the environment, the environment over `.env`).
#[derive(Parser)]
#[command(name = "enginelabs-2api", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy (the default).
    Serve,
    /// Run the proxy against the built-in simulator of cto.new: no cookie needed.
    Demo(DemoArgs),
    /// Run only the simulator of cto.new (Clerk + EngineLabs + WebSocket) on a port.
    Simulate(SimulateArgs),
    /// Measure the proxy against the simulator: added time to first byte, CPU, memory.
    Bench(crate::bench::BenchArgs),
    /// Check every configured account step by step (runs short test turns: costs credits).
    Doctor(crate::doctor::DoctorArgs),
}

#[derive(clap::Args, Clone)]
pub struct DemoArgs {
    /// Pause between streamed words of the simulated answers, in milliseconds.
    #[arg(long, default_value = "40")]
    pub frame_delay_ms: u64,
    /// Words in each simulated answer.
    #[arg(long, default_value = "40")]
    pub reply_words: usize,
    /// Stream simulated reasoning before each answer.
    #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
    pub thinking: bool,
    /// Which door the demo's account uses: `web` (a cookie account: the web agent, tools
    /// emulated) or `cli` (a `cto login` account: the CLI API, native tools).
    #[arg(long, value_enum, default_value = "web")]
    pub door: DemoDoor,
}

/// The demo account's kind.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoDoor {
    Web,
    Cli,
}

#[derive(clap::Args, Clone)]
pub struct SimulateArgs {
    /// Port of the simulator.
    #[arg(long, default_value = "8090")]
    pub port: u16,
    /// Address of the simulator.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Lifetime of minted JWTs in seconds.
    #[arg(long, default_value = "60")]
    pub token_ttl_secs: u64,
    /// Pause between streamed frames in milliseconds.
    #[arg(long, default_value = "0")]
    pub frame_delay_ms: u64,
    /// Words in each answer.
    #[arg(long, default_value = "24")]
    pub reply_words: usize,
    /// Disable the Gen-2 setup calls (they answer 404), to try `auto` falling back to Gen-1.
    #[arg(long)]
    pub no_gen2: bool,
    /// Write the first account's cookie to this file instead of printing it.
    #[arg(long)]
    pub cookie_file: Option<PathBuf>,
    /// Serve this capture (`doctor --capture FILE`) as the upstream instead of simulating:
    /// point CLERK_BASE_URL and ENGINE_BASE_URL at it; any cookie and refresh token do.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
}
