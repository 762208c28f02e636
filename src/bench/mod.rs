//! `enginelabs-2api bench`: what the proxy costs, measured against the simulator.
//!
//! It starts the simulator and the proxy as two child processes of this binary (so the proxy's
//! CPU time and memory can be read from `/proc` without counting the load generator), then at
//! each concurrency level C runs C concurrent streaming requests through the proxy, and the
//! same turns directly against the simulator with the project's own upstream client. It reports
//! the proxy's added time to first token (p50/p99), its CPU time per request and its peak RSS.
//!
//! `--scenario many-messages` measures something else: the memory of a burst of requests made
//! of many small messages ([`burst`]).
//!
//! # Layout
//! - [`procs`]: the child processes and their `/proc` readings;
//! - [`load`]: the workers that drive requests and time them;
//! - [`burst`]: the many-small-messages burst and the proxy's RSS around it.

pub mod burst;
pub mod load;
pub mod procs;

use std::time::Duration;

use crate::run::anyhow_like::Result;

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
    /// First port of the two the bench uses (simulator, proxy).
    #[arg(long, default_value = "18090")]
    pub port: u16,
    /// Offer a tool in every request and have the simulated model call it (the web door:
    /// prompt block, streaming parse, tool-call chunks; the CLI door: native tool calls).
    #[arg(long)]
    pub tools: bool,
    /// The door the proxy's account uses: `web` (a cookie account, the web agent's WebSocket)
    /// or `cli` (a `cto login` account, the CLI API's SSE).
    #[arg(long, value_enum, default_value = "web")]
    pub door: crate::cli::DemoDoor,
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
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Streams,
    ManyMessages,
}

/// One level's numbers.
#[derive(Debug, Clone)]
pub struct LevelReport {
    pub concurrency: usize,
    pub requests: usize,
    pub errors: usize,
    pub direct_ttft: Percentiles,
    pub proxy_ttft: Percentiles,
    /// Time to the end of the answer (with `--tools`: to the complete tool call).
    pub direct_total: Percentiles,
    pub proxy_total: Percentiles,
    pub proxy_cpu_ms_per_request: f64,
    /// The simulator's CPU per request in the same run: it wakes up once per frame like the
    /// proxy does, so it shows what this machine charges for the wake-ups alone.
    pub sim_cpu_ms_per_request: f64,
    pub proxy_peak_rss_mb: f64,
    pub wall: Duration,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
}

impl Percentiles {
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        Percentiles {
            p50: at(0.5),
            p99: at(0.99),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn signed_ms(a: Duration, b: Duration) -> String {
    format!("{:+.2}", ms(a) - ms(b))
}

pub async fn run(args: BenchArgs) -> Result<()> {
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
    let procs = procs::Children::start(&args).await?;
    eprintln!(
        "simulator pid {} on {}, proxy pid {} on {}",
        procs.sim_pid(),
        procs.sim_url,
        procs.proxy_pid(),
        procs.proxy_url
    );
    let driver = load::Driver::new(&procs, args.tools, args.door).await?;
    driver.warm_up().await?;
    let mut reports = Vec::new();
    for c in levels {
        let requests = c * args.min_requests.div_ceil(c).max(1);
        eprintln!("level C={c}: {requests} requests through the proxy and directly");
        let direct = driver.direct(c, requests).await?;
        let cpu_before = procs.proxy_cpu()?;
        let sim_before = procs.sim_cpu()?;
        let sampler = procs.rss_sampler();
        let started = std::time::Instant::now();
        let proxied = driver.proxied(c, requests).await?;
        let wall = started.elapsed();
        let cpu = procs.proxy_cpu()?.saturating_sub(cpu_before);
        let sim_cpu = procs.sim_cpu()?.saturating_sub(sim_before);
        let peak = sampler.stop().await;
        let (mut d, mut p) = (direct.ttft, proxied.ttft);
        let (mut dt, mut pt) = (direct.total, proxied.total);
        reports.push(LevelReport {
            concurrency: c,
            requests,
            errors: proxied.errors + direct.errors,
            direct_ttft: Percentiles::of(&mut d),
            proxy_ttft: Percentiles::of(&mut p),
            direct_total: Percentiles::of(&mut dt),
            proxy_total: Percentiles::of(&mut pt),
            proxy_cpu_ms_per_request: ms(cpu) / requests as f64,
            sim_cpu_ms_per_request: ms(sim_cpu) / requests as f64,
            proxy_peak_rss_mb: peak as f64 / (1024.0 * 1024.0),
            wall,
        });
    }
    println!("{}", table(&reports, &args));
    Ok(())
}

/// The README table.
pub fn table(reports: &[LevelReport], args: &BenchArgs) -> String {
    let what = match (args.tools, args.door) {
        (true, crate::cli::DemoDoor::Web) => "Answers that call a tool (a sentence and a `<<<TOOL_CALLS>>>` block the proxy parses into a native tool call)".to_string(),
        (true, crate::cli::DemoDoor::Cli) => "Answers that call a tool (native tool calls)".to_string(),
        (false, _) => format!("{}-word streams", args.words),
    };
    let door = match args.door {
        crate::cli::DemoDoor::Web => "web door (WebSocket)",
        crate::cli::DemoDoor::Cli => "CLI door (SSE)",
    };
    let mut s = format!(
        "{what} through the {door}, {} ms between frames, proxy and simulator as separate processes on this machine\n\n",
        args.frame_delay_ms
    );
    s.push_str("| C | requests | errors | TTFT direct p50 / p99 (ms) | TTFT via proxy p50 / p99 (ms) | added p50 / p99 (ms) | end added p50 / p99 (ms) | proxy CPU per request (ms) | simulator CPU per request (ms) | proxy peak RSS (MB) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        s.push_str(&format!(
            "| {} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {} / {} | {} / {} | {:.2} | {:.2} | {:.1} |\n",
            r.concurrency,
            r.requests,
            r.errors,
            ms(r.direct_ttft.p50),
            ms(r.direct_ttft.p99),
            ms(r.proxy_ttft.p50),
            ms(r.proxy_ttft.p99),
            signed_ms(r.proxy_ttft.p50, r.direct_ttft.p50),
            signed_ms(r.proxy_ttft.p99, r.direct_ttft.p99),
            signed_ms(r.proxy_total.p50, r.direct_total.p50),
            signed_ms(r.proxy_total.p99, r.direct_total.p99),
            r.proxy_cpu_ms_per_request,
            r.sim_cpu_ms_per_request,
            r.proxy_peak_rss_mb,
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(p.p50, Duration::from_millis(51));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(Percentiles::of(&mut []).p50, Duration::ZERO);
    }
}
