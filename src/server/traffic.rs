//! The overview's time series: a ring of 10-second buckets holding requests, errors and
//! time-to-first-token samples, fed by two one-line hooks ([`request`] from the request
//! tracker, [`ttfb`] from the chat handler) and read by `/admin/api/overview`.
//!
//! Process-wide (like the Prometheus recorder): one binary serves one application. Only the API
//! surfaces are counted; the admin page's own polling, health checks and scrapes are not, so
//! the chart shows client traffic.

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Width of one bucket.
pub const BUCKET_SECS: u64 = 10;
/// Buckets kept: 15 minutes.
const BUCKETS: usize = 90;
/// TTFB samples kept per bucket (enough for percentiles; bounds memory under load).
const MAX_SAMPLES: usize = 512;

static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);
static RING: LazyLock<Mutex<Ring>> = LazyLock::new(|| Mutex::new(Ring::default()));

#[derive(Default, Clone)]
struct Bucket {
    /// Bucket number (epoch seconds / BUCKET_SECS); a stale slot has an older number.
    slot: u64,
    requests: u64,
    errors: u64,
    ttfb_ms: Vec<f64>,
}

#[derive(Default)]
struct Ring {
    buckets: Vec<Bucket>,
}

impl Ring {
    fn at(&mut self, slot: u64) -> &mut Bucket {
        if self.buckets.len() < BUCKETS {
            self.buckets.resize(BUCKETS, Bucket::default());
        }
        let b = &mut self.buckets[(slot % BUCKETS as u64) as usize];
        if b.slot != slot {
            *b = Bucket {
                slot,
                ..Bucket::default()
            };
        }
        b
    }

    fn get(&self, slot: u64) -> Option<&Bucket> {
        self.buckets
            .get((slot % BUCKETS as u64) as usize)
            .filter(|b| b.slot == slot)
    }
}

fn now_slot() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        / BUCKET_SECS
}

/// Starts the uptime clock (process start-up, see `server::install_process_globals`).
pub fn mark_start() {
    LazyLock::force(&STARTED);
}

pub fn uptime() -> Duration {
    STARTED.elapsed()
}

/// Whether a route is client traffic (what the overview charts); the playground's chat counts.
fn counted_route(route: &str) -> bool {
    route == "/admin/api/chat"
        || !(route.starts_with("/admin")
            || route == "/healthz"
            || route == "/metrics"
            || route == "/"
            || route == "unmatched")
}

/// Hook for the request tracker: one answered request. An error is any status of 400 or more.
pub fn request(route: &str, status: u16) {
    if !counted_route(route) {
        return;
    }
    let slot = now_slot();
    if let Ok(mut ring) = RING.lock() {
        let b = ring.at(slot);
        b.requests += 1;
        if status >= 400 {
            b.errors += 1;
        }
    }
}

/// Hook for the chat handler: the time from the request to the upstream's first event.
pub fn ttfb(elapsed: Duration) {
    let slot = now_slot();
    if let Ok(mut ring) = RING.lock() {
        let b = ring.at(slot);
        if b.ttfb_ms.len() < MAX_SAMPLES {
            b.ttfb_ms.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
}

/// One point of the chart.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Start of the bucket, epoch seconds.
    pub t: u64,
    pub requests: u64,
    pub errors: u64,
    pub ttfb_p50_ms: Option<f64>,
    pub ttfb_p95_ms: Option<f64>,
}

/// The last `minutes` as points plus totals over the whole window.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub bucket_secs: u64,
    pub window_secs: u64,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_minute: f64,
    /// Errors / requests (0 without requests).
    pub error_rate: f64,
    pub ttfb_p50_ms: Option<f64>,
    pub ttfb_p95_ms: Option<f64>,
    pub points: Vec<Point>,
}

/// Reads the last `minutes` (at most 15) of the ring.
pub fn window(minutes: u64) -> Window {
    let n = (minutes.clamp(1, 15) * 60 / BUCKET_SECS) as usize;
    let last = now_slot();
    let mut points = Vec::with_capacity(n);
    let mut all = Vec::new();
    let (mut requests, mut errors) = (0, 0);
    if let Ok(ring) = RING.lock() {
        for slot in (last + 1 - n as u64)..=last {
            let (r, e, mut s) = match ring.get(slot) {
                Some(b) => (b.requests, b.errors, b.ttfb_ms.clone()),
                None => (0, 0, Vec::new()),
            };
            requests += r;
            errors += e;
            all.extend_from_slice(&s);
            points.push(Point {
                t: slot * BUCKET_SECS,
                requests: r,
                errors: e,
                ttfb_p50_ms: percentile(&mut s, 0.50),
                ttfb_p95_ms: percentile(&mut s, 0.95),
            });
        }
    }
    let window_secs = n as u64 * BUCKET_SECS;
    Window {
        bucket_secs: BUCKET_SECS,
        window_secs,
        requests,
        errors,
        requests_per_minute: requests as f64 * 60.0 / window_secs as f64,
        error_rate: if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        },
        ttfb_p50_ms: percentile(&mut all, 0.50),
        ttfb_p95_ms: percentile(&mut all, 0.95),
        points,
    }
}

/// Nearest-rank percentile (sorts in place); `None` without samples.
pub fn percentile(samples: &mut [f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    Some(samples[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut s, 0.5), Some(50.0));
        assert_eq!(percentile(&mut s, 0.95), Some(95.0));
        assert_eq!(percentile(&mut [7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&mut [], 0.5), None);
    }

    #[test]
    fn counts_client_routes_only_and_reads_them_back() {
        let before = window(1);
        request("/v1/chat/completions", 200);
        request("/v1/chat/completions", 502);
        request("/admin/api/overview", 200);
        assert!(counted_route("/admin/api/chat") && !counted_route("/admin/api/accounts"));
        request("/healthz", 200);
        ttfb(Duration::from_millis(40));
        let after = window(1);
        // Other tests in this process may count too, so compare at least what was added.
        assert!(after.requests >= before.requests + 2);
        assert!(after.errors > before.errors);
        assert!(after.ttfb_p95_ms.is_some());
        assert_eq!(after.points.len(), 6);
    }
}
