//! `enginelabs-2api bench`: what the proxy costs, measured against the simulator and a floor.
//!
//! It starts the simulator, the proxy and a bare relay (the *floor*) as child processes of
//! this binary (so each one's CPU time and memory can be read from `/proc` without counting
//! the load generator), then at each concurrency level C runs C concurrent streaming requests
//! three ways: directly against the simulator with the project's own upstream client, through
//! the floor, and through the proxy. It reports the proxy's added time to first token
//! (p50/p99), its CPU time per request beside the floor's (and their ratio), its threads after
//! the level, its RSS when idle after start-up and its peak RSS.
//!
//! The floor ([`floor`]) makes the same upstream calls per request as the proxy and copies each
//! WebSocket text frame to the client as an SSE `data:` line verbatim: no parsing, no store, no
//! auth. What the proxy spends above it is the proxy's own work.
//!
//! `--pin` runs every level twice: first unpinned, then with the proxy (and the floor) pinned to
//! core 0 and the simulator and this load generator to core 1 (`taskset`), so one run gives
//! both figures. `--proxy-bin PATH` runs another build of the proxy (a baseline) under the same
//! bench.
//!
//! `--scenario many-messages` measures something else: the memory of a burst of requests made
//! of many small messages ([`burst`]).
//!
//! # Layout
//! - [`procs`]: the child processes and their `/proc` readings;
//! - [`load`]: the workers that drive requests and time them;
//! - [`floor`]: the bare WebSocket-to-SSE relay (`bench --floor-server`, started by the bench);
//! - [`report`]: the numbers of a level and the README table;
//! - [`burst`]: the many-small-messages burst and the proxy's RSS around it.

pub mod burst;
pub mod floor;
pub mod load;
pub mod procs;
pub mod report;

use std::path::PathBuf;

pub use report::{LevelReport, Percentiles, table};

/// A boxed error with a readable message: what a command's top level needs. The bench's own,
/// so that it depends on no module above it.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Concurrency levels, comma-separated.
    #[arg(long, default_value = "1,100,1000")]
    pub concurrency: String,
    /// Words (about tokens) in each streamed answer.
    #[arg(long, default_value = "200")]
    pub words: usize,
    /// Pause between streamed words in the simulator (keeps C streams open at once).
    #[arg(long, default_value = "5")]
    pub frame_delay_ms: u64,
    /// At least this many requests per level (each worker runs ceil(min/C) requests, at least one).
    #[arg(long, default_value = "200")]
    pub min_requests: usize,
    /// First port of the three the bench uses (simulator, proxy, floor).
    #[arg(long, default_value = "18090")]
    pub port: u16,
    /// Offer a tool in every request and have the simulated model call it (the web door:
    /// prompt block, streaming parse, tool-call chunks; the CLI door: native tool calls).
    #[arg(long)]
    pub tools: bool,
    /// The door the proxy's account uses: `web` (a cookie account, the web agent's WebSocket)
    /// or `cli` (a `cto login` account, the CLI API's SSE). The floor row is measured on the
    /// web door only.
    #[arg(long, value_enum, default_value = "web")]
    pub door: Door,
    /// The proxy's conversation store: `embedded` (its default, a redb file in the bench's
    /// temporary directory) or `memory`.
    #[arg(long, value_enum, default_value = "embedded")]
    pub store: BenchStore,
    /// Run the levels a second time with the proxy pinned to core 0 and the simulator and
    /// the load generator to core 1 (`taskset`, from util-linux).
    #[arg(long)]
    pub pin: bool,
    /// Run this binary as the proxy instead of this one (e.g. a baseline build); the
    /// simulator, the floor and the load stay this binary's.
    #[arg(long)]
    pub proxy_bin: Option<PathBuf>,
    /// What to measure: `streams` (time to first token, CPU, memory per level) or
    /// `many-messages` (RSS around a burst of many-small-message requests).
    #[arg(long, value_enum, default_value = "streams")]
    pub scenario: Scenario,
    /// many-messages: concurrent requests in the burst.
    #[arg(long, default_value = "16")]
    pub requests: usize,
    /// many-messages: one-letter user messages per request.
    #[arg(long, default_value = "100000")]
    pub messages: usize,
    /// many-messages: seconds to wait after the burst before reading the RSS again (jemalloc
    /// hands memory back after ~10 s of decay).
    #[arg(long, default_value = "20")]
    pub settle_secs: u64,
    /// many-messages: extra `NAME=value` settings for the proxy (repeatable); the proxy
    /// otherwise runs with its defaults.
    #[arg(long)]
    pub proxy_env: Vec<String>,
    /// Internal: run as the floor relay on `--port` (the bench starts it; see [`floor`]).
    #[arg(long, hide = true)]
    pub floor_server: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Streams,
    ManyMessages,
}

/// The door the bench's proxy account uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// A cookie account on the web agent (WebSocket frames).
    Web,
    /// A `cto login` account on the CLI API (SSE).
    Cli,
}

/// The proxy's store during the bench.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchStore {
    Embedded,
    Memory,
}

/// Whether a pass runs with the processes pinned to cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// Wherever the kernel puts them.
    Free,
    /// Proxy and floor on core 0; simulator and load generator on core 1.
    Pinned,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    if args.floor_server {
        return floor::serve(args.port).await;
    }
    if args.scenario == Scenario::ManyMessages {
        return burst::run(&args).await;
    }
    let levels: Vec<usize> = args
        .concurrency
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("--concurrency: `{s}` is not a number"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let mut passes = vec![Pinning::Free];
    if args.pin {
        passes.push(Pinning::Pinned);
    }
    let mut tables = Vec::new();
    for pinning in passes {
        let reports = pass(&args, &levels, pinning).await?;
        let t = table(&reports, &args, pinning);
        // Printed as soon as it is known: a later pass may fail.
        println!("{t}");
        tables.push(reports);
    }
    if let [free, pinned] = tables.as_slice() {
        println!("{}", report::pin_comparison(free, pinned));
    }
    Ok(())
}

/// All levels once, with fresh child processes.
async fn pass(args: &BenchArgs, levels: &[usize], pinning: Pinning) -> Result<Vec<LevelReport>> {
    let procs = procs::Children::start(args, pinning).await?;
    let _pinned_self = procs::PinSelf::apply(pinning)?;
    eprintln!(
        "{pinning:?}: simulator pid {} on {}, proxy pid {} on {} (idle RSS {:.1} MB), floor pid {} on {}",
        procs.sim_pid(),
        procs.sim_url,
        procs.proxy_pid(),
        procs.proxy_url,
        procs.proxy_idle_rss as f64 / (1024.0 * 1024.0),
        procs.floor_pid(),
        procs.floor_url,
    );
    let driver = load::Driver::new(&procs, args.tools, args.door).await?;
    driver.warm_up().await?;
    let floor_on = args.door == Door::Web && !args.tools;
    let mut reports = Vec::new();
    for &c in levels {
        let requests = c * args.min_requests.div_ceil(c).max(1);
        eprintln!("level C={c}: {requests} requests directly, through the floor and the proxy");
        let direct = driver.direct(c, requests).await?;
        let floor = if floor_on {
            let before = procs.floor_cpu()?;
            let out = driver.floored(c, requests).await?;
            Some((out, procs.floor_cpu()?.saturating_sub(before)))
        } else {
            None
        };
        let cpu_before = procs.proxy_cpu()?;
        let sim_before = procs.sim_cpu()?;
        let sampler = procs.rss_sampler();
        let started = std::time::Instant::now();
        let proxied = driver.proxied(c, requests).await?;
        let wall = started.elapsed();
        let cpu = procs.proxy_cpu()?.saturating_sub(cpu_before);
        let sim_cpu = procs.sim_cpu()?.saturating_sub(sim_before);
        let peak = sampler.stop().await;
        reports.push(LevelReport::new(
            c,
            requests,
            direct,
            proxied,
            floor,
            report::Readings {
                proxy_cpu: cpu,
                sim_cpu,
                proxy_peak_rss: peak,
                proxy_idle_rss: procs.proxy_idle_rss,
                proxy_threads: procs::threads(procs.proxy_pid()).unwrap_or(0),
                wall,
            },
        ));
    }
    drop(driver);
    procs.stop().await;
    Ok(reports)
}
