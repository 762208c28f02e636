//! The numbers of one level ([`LevelReport`]) and the tables printed for the README.

use std::time::Duration;

use super::load::Outcome;
use super::{BenchArgs, Door, Pinning};

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
    /// The floor relay's CPU per request (the same load through a bare WebSocket-to-SSE loop);
    /// `None` when the floor was not run (CLI door, `--tools`).
    pub floor_cpu_ms_per_request: Option<f64>,
    /// The floor's time to first token, for comparison with the proxy's.
    pub floor_ttft: Option<Percentiles>,
    /// The simulator's CPU per request in the same run: it wakes up once per frame like the
    /// proxy does, so it shows what this machine charges for the wake-ups alone.
    pub sim_cpu_ms_per_request: f64,
    pub proxy_peak_rss_mb: f64,
    /// The proxy's RSS after start-up, before its first request.
    pub proxy_idle_rss_mb: f64,
    /// The proxy's threads (`/proc/PID/status`) after the level.
    pub proxy_threads: u32,
    pub wall: Duration,
}

/// What `/proc` said about the processes during one level.
pub struct Readings {
    pub proxy_cpu: Duration,
    pub sim_cpu: Duration,
    pub proxy_peak_rss: u64,
    pub proxy_idle_rss: u64,
    pub proxy_threads: u32,
    pub wall: Duration,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl LevelReport {
    pub fn new(
        concurrency: usize,
        requests: usize,
        direct: Outcome,
        proxied: Outcome,
        floor: Option<(Outcome, Duration)>,
        r: Readings,
    ) -> LevelReport {
        let per_request = |d: Duration| ms(d) / requests as f64;
        let (mut d, mut p) = (direct.ttft, proxied.ttft);
        let (mut dt, mut pt) = (direct.total, proxied.total);
        let floor_errors = floor.as_ref().map_or(0, |(o, _)| o.errors);
        LevelReport {
            concurrency,
            requests,
            errors: proxied.errors + direct.errors + floor_errors,
            direct_ttft: Percentiles::of(&mut d),
            proxy_ttft: Percentiles::of(&mut p),
            direct_total: Percentiles::of(&mut dt),
            proxy_total: Percentiles::of(&mut pt),
            proxy_cpu_ms_per_request: per_request(r.proxy_cpu),
            floor_cpu_ms_per_request: floor.as_ref().map(|(_, cpu)| per_request(*cpu)),
            floor_ttft: floor.map(|(mut o, _)| Percentiles::of(&mut o.ttft)),
            sim_cpu_ms_per_request: per_request(r.sim_cpu),
            proxy_peak_rss_mb: mb(r.proxy_peak_rss),
            proxy_idle_rss_mb: mb(r.proxy_idle_rss),
            proxy_threads: r.proxy_threads,
            wall: r.wall,
        }
    }

    /// Proxy CPU per request over the floor's, when the floor ran (and used any CPU).
    pub fn ratio(&self) -> Option<f64> {
        self.floor_cpu_ms_per_request
            .filter(|f| *f > 0.0)
            .map(|f| self.proxy_cpu_ms_per_request / f)
    }
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

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

/// The README table of one pass.
pub fn table(reports: &[LevelReport], args: &BenchArgs, pinning: Pinning) -> String {
    let what = match (args.tools, args.door) {
        (true, Door::Web) => "Answers that call a tool (a sentence and a `<<<TOOL_CALLS>>>` block the proxy parses into a native tool call)".to_string(),
        (true, Door::Cli) => "Answers that call a tool (native tool calls)".to_string(),
        (false, _) => format!("{}-word streams", args.words),
    };
    let door = match args.door {
        Door::Web => "web door (WebSocket)",
        Door::Cli => "CLI door (SSE)",
    };
    let placement = match pinning {
        Pinning::Free => "unpinned",
        Pinning::Pinned => "proxy and floor pinned to core 0, simulator and load to core 1",
    };
    let idle = reports.first().map_or(0.0, |r| r.proxy_idle_rss_mb);
    let mut s = format!(
        "{what} through the {door}, {} ms between frames, {:?} store, {placement}; proxy idle RSS {idle:.1} MB\n\n",
        args.frame_delay_ms, args.store
    );
    s.push_str("| C | requests | errors | TTFT direct p50 / p99 (ms) | TTFT via proxy p50 / p99 (ms) | added p50 / p99 (ms) | floor added p50 / p99 (ms) | end added p50 / p99 (ms) | proxy CPU per request (ms) | floor CPU per request (ms) | proxy / floor | simulator CPU per request (ms) | proxy threads after | proxy peak RSS (MB) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        let floor_added = r.floor_ttft.map_or_else(
            || "–".to_string(),
            |f| {
                format!(
                    "{} / {}",
                    signed_ms(f.p50, r.direct_ttft.p50),
                    signed_ms(f.p99, r.direct_ttft.p99)
                )
            },
        );
        s.push_str(&format!(
            "| {} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {} / {} | {floor_added} | {} / {} | {:.2} | {} | {} | {:.2} | {} | {:.1} |\n",
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
            opt(r.floor_cpu_ms_per_request, 2),
            r.ratio().map_or_else(|| "–".to_string(), |x| format!("{x:.2}×")),
            r.sim_cpu_ms_per_request,
            r.proxy_threads,
            r.proxy_peak_rss_mb,
        ));
    }
    s
}

/// Unpinned and pinned figures side by side, per level.
pub fn pin_comparison(free: &[LevelReport], pinned: &[LevelReport]) -> String {
    let mut s = String::from(
        "Unpinned beside pinned\n\n| C | added TTFT p50 / p99 (ms), unpinned | pinned | proxy CPU per request (ms), unpinned | pinned | proxy / floor, unpinned | pinned |\n|---|---|---|---|---|---|---|\n",
    );
    for (f, p) in free.iter().zip(pinned) {
        let added = |r: &LevelReport| {
            format!(
                "{} / {}",
                signed_ms(r.proxy_ttft.p50, r.direct_ttft.p50),
                signed_ms(r.proxy_ttft.p99, r.direct_ttft.p99)
            )
        };
        let ratio = |r: &LevelReport| {
            r.ratio()
                .map_or_else(|| "–".to_string(), |x| format!("{x:.2}×"))
        };
        s.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} | {} | {} |\n",
            f.concurrency,
            added(f),
            added(p),
            f.proxy_cpu_ms_per_request,
            p.proxy_cpu_ms_per_request,
            ratio(f),
            ratio(p),
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

    fn outcome(ms: u64) -> Outcome {
        Outcome {
            ttft: vec![Duration::from_millis(ms)],
            total: vec![Duration::from_millis(ms * 2)],
            errors: 0,
        }
    }

    #[test]
    fn the_ratio_is_proxy_cpu_over_floor_cpu() {
        let readings = Readings {
            proxy_cpu: Duration::from_millis(300),
            sim_cpu: Duration::from_millis(100),
            proxy_peak_rss: 0,
            proxy_idle_rss: 0,
            proxy_threads: 7,
            wall: Duration::ZERO,
        };
        let with_floor = Some((outcome(3), Duration::from_millis(250)));
        let r = LevelReport::new(100, 100, outcome(2), outcome(3), with_floor, readings);
        assert!((r.proxy_cpu_ms_per_request - 3.0).abs() < 1e-9);
        assert!((r.ratio().expect("floor ran") - 1.2).abs() < 1e-9);
        assert_eq!(r.proxy_threads, 7);
    }
}
