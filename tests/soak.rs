//! Soak test: hundreds of conversations through the proxy while a background task keeps
//! switching faults (5xx/429 triggers, WebSocket drops, slow frames, cumulative buffers,
//! reasoning, a revoked cookie then restored), on Gen-1 and Gen-2 at once, streamed and not.
//!
//! Every request must either deliver exactly the expected text once, or end with a clear error
//! (an HTTP error JSON with a message, or an SSE error event followed by `[DONE]`); none may hang.
//! At the end every upstream socket is closed and the in-flight gauge is back to zero.
//!
//! `SOAK_STREAMS` (default 300) sets the number of requests, `SOAK_SEED` the seed (printed, so
//! a failing run can be replayed).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use enginelabs_2api::config::values;
use enginelabs_2api::simulator::{Faults, SimConfig, reply_text, thinking_text};
use futures_util::StreamExt as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const WORDS: usize = 16;
const CONCURRENCY: usize = 20;
/// Longer than any legitimate request here (upstream timeouts are 5 s, retries included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);

/// How one request ended.
#[derive(Debug)]
enum Outcome {
    /// The exact expected text.
    Ok,
    /// A clear error; the label says which kind (status and code).
    Error(String),
    /// Anything else: wrong text, a stream without `[DONE]`, an error without a message, a hang.
    Bad(String),
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

async fn harness(protocol: &str) -> Arc<Harness> {
    let protocol = protocol.to_string();
    Arc::new(
        start(
            SimConfig {
                reply_words: WORDS,
                frame_delay: Duration::from_millis(3),
                // Short-lived tokens, so that a revoked cookie is noticed at the next mint.
                token_ttl: Duration::from_secs(2),
                ..SimConfig::default()
            },
            move |a| {
                a.upstream_protocol = values::protocol(&protocol).expect("valid upstream_protocol")
            },
        )
        .await,
    )
}

/// One random fault set, whether the account should be revoked while it holds, and a label.
fn random_faults(rng: &mut StdRng) -> (Faults, bool, &'static str) {
    let mut f = Faults::default();
    let mut revoke = false;
    let label = match rng.random_range(0..12) {
        0 => {
            f.trigger_status = Some([500, 502, 503][rng.random_range(0..3)]);
            f.trigger_status_count = rng.random_range(1..4);
            "trigger 5xx"
        }
        1 => {
            f.trigger_status = Some(429);
            f.trigger_status_count = rng.random_range(1..3);
            "trigger 429"
        }
        2 | 3 => {
            f.ws_drop_after = Some(rng.random_range(1..WORDS as u32 + 4));
            "socket drops"
        }
        4 => {
            f.slow_frame_ms = rng.random_range(2..15);
            "slow frames"
        }
        5 => {
            revoke = true;
            "cookie revoked"
        }
        // Calm periods, so that the proxy's own recovery gets a chance too.
        _ => "calm",
    };
    f.cumulative = rng.random_bool(0.3);
    f.thinking = rng.random_bool(0.3);
    (f, revoke, label)
}

/// Switches the faults of `h` every 150-400 ms until `stop`; clears them at the end.
async fn chaos(h: Arc<Harness>, seed: u64, stop: Arc<AtomicBool>) -> BTreeMap<&'static str, u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let user_id = h.sim.account().user_id;
    let mut revoked = false;
    let mut switches = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        let (faults, revoke, label) = random_faults(&mut rng);
        *switches.entry(label).or_default() += 1;
        h.sim.set_faults(faults);
        if revoke && !revoked {
            h.sim.revoke(&user_id);
        } else if !revoke && revoked {
            h.sim.restore(&user_id);
        }
        revoked = revoke;
        // A revocation lasts longer than a token, so that a mint runs into it.
        let pause = if revoke {
            rng.random_range(1_500..2_500)
        } else {
            rng.random_range(150..400)
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    h.sim.set_faults(Faults::default());
    if revoked {
        h.sim.restore(&user_id);
    }
    switches
}

/// The error object of a body, if it has one with a non-empty message; labelled by code.
fn error_label(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    let msg = e.get("message")?.as_str()?;
    if msg.trim().is_empty() {
        return None;
    }
    let code = e
        .get("code")
        .and_then(Value::as_str)
        .or_else(|| e.get("type").and_then(Value::as_str))
        .unwrap_or("no_code");
    Some(code.to_string())
}

fn reasoning_ok(reasoning: &str) -> bool {
    reasoning.is_empty() || reasoning == thinking_text(1)
}

async fn one_request(h: &Harness, prompt: &str, stream: bool) -> Outcome {
    let body = json!({"model": "GPT5", "stream": stream, "messages": [user(prompt)]});
    let expected = reply_text(prompt, 1, WORDS);
    let resp = match h.post("/v1/chat/completions").json(&body).send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Bad(format!("transport error: {e}")),
    };
    let status = resp.status().as_u16();
    let text = match resp.text().await {
        Ok(t) => t,
        Err(e) => return Outcome::Bad(format!("body cut ({status}): {e}")),
    };
    if status != 200 {
        return match serde_json::from_str::<Value>(&text)
            .ok()
            .as_ref()
            .and_then(error_label)
        {
            Some(code) => Outcome::Error(format!("http {status} {code}")),
            None => Outcome::Bad(format!("HTTP {status} without a clear error: {text}")),
        };
    }
    if !stream {
        let v: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return Outcome::Bad(format!("non-JSON answer: {e}: {text}")),
        };
        let msg = &v["choices"][0]["message"];
        let content = msg["content"].as_str().unwrap_or_default();
        let reasoning = msg["reasoning_content"].as_str().unwrap_or_default();
        return if content == expected && reasoning_ok(reasoning) {
            Outcome::Ok
        } else {
            Outcome::Bad(format!("wrong answer {content:?} / {reasoning:?}"))
        };
    }
    let data = sse_data(&text);
    if data.last().map(String::as_str) != Some("[DONE]") {
        return Outcome::Bad(format!("stream without [DONE]: {text}"));
    }
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    if events.len() != data.len() - 1 {
        return Outcome::Bad(format!("non-JSON event: {text}"));
    }
    let errors: Vec<usize> = (0..events.len())
        .filter(|i| events[*i].get("error").is_some())
        .collect();
    match errors.as_slice() {
        [] => {
            let (content, reasoning) = stream_text(&data);
            if content == expected && reasoning_ok(&reasoning) {
                Outcome::Ok
            } else {
                Outcome::Bad(format!("wrong stream text {content:?} / {reasoning:?}"))
            }
        }
        [i] if *i == events.len() - 1 => {
            // What came before the error must be a prefix of the answer: no repeats.
            let (content, _) = stream_text(&data[..*i]);
            if !expected.starts_with(&content) {
                return Outcome::Bad(format!(
                    "text before the error is not a prefix: {content:?}"
                ));
            }
            match error_label(&events[*i]) {
                Some(code) => Outcome::Error(format!("sse {code}")),
                None => Outcome::Bad(format!("error event without a message: {}", data[*i])),
            }
        }
        _ => Outcome::Bad(format!("error event not last: {text}")),
    }
}

/// The value of an unlabelled metric in the Prometheus text, if exported.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_random_faults() {
    let total = env_number("SOAK_STREAMS", 300);
    let seed = env_number("SOAK_SEED", rand::rng().random());
    println!("soak: {total} requests, concurrency {CONCURRENCY}, SOAK_SEED={seed}");

    let gens = [harness("gen1").await, harness("gen2").await];
    let stop = Arc::new(AtomicBool::new(false));
    let chaos_tasks: Vec<_> = gens
        .iter()
        .enumerate()
        .map(|(i, h)| {
            tokio::spawn(chaos(
                Arc::clone(h),
                seed.wrapping_add(i as u64 + 1),
                Arc::clone(&stop),
            ))
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(seed);
    let plan: Vec<(u64, usize, bool)> = (0..total)
        .map(|i| (i, rng.random_range(0..2), rng.random_bool(0.6)))
        .collect();
    // Two halves: memory after the second must not have grown past the first (no leak per
    // stream). The first half warms up allocators, pools and caches.
    let half = plan.len() / 2;
    let mut outcomes = run_plan(&gens, seed, plan[..half].to_vec()).await;
    let rss_first = rss_kib();
    outcomes.extend(run_plan(&gens, seed, plan[half..].to_vec()).await);
    let rss_second = rss_kib();
    println!("soak: RSS after the first half {rss_first} KiB, after the second {rss_second} KiB");

    stop.store(true, Ordering::SeqCst);
    let mut switches: BTreeMap<&str, u32> = BTreeMap::new();
    for t in chaos_tasks {
        for (k, n) in t.await.expect("chaos task") {
            *switches.entry(k).or_default() += n;
        }
    }

    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let mut bad = Vec::new();
    let mut ok_per_gen = [0u32; 2];
    for (g, stream, outcome) in &outcomes {
        let mode = if *stream { "stream" } else { "json" };
        let key = match outcome {
            Outcome::Ok => {
                ok_per_gen[*g] += 1;
                format!("gen{} {mode} ok", g + 1)
            }
            Outcome::Error(kind) => format!("gen{} {mode} error {kind}", g + 1),
            Outcome::Bad(why) => {
                bad.push(format!("gen{} {mode}: {why}", g + 1));
                format!("gen{} {mode} BAD", g + 1)
            }
        };
        *counts.entry(key).or_default() += 1;
    }
    println!("soak: fault switches {switches:?}; outcomes:");
    for (k, n) in &counts {
        println!("  {n:5}  {k}");
    }
    for h in &gens {
        let s = h.sim.stats();
        println!(
            "  sim: {} triggers, {} sockets opened, {} closed early",
            s.triggers.len(),
            s.ws_opened,
            s.ws_closed_early
        );
    }

    assert!(
        bad.is_empty(),
        "SOAK_SEED={seed}: {} bad outcome(s):\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert_eq!(outcomes.len() as u64, total);
    assert!(
        rss_second <= rss_first + 10 * 1024,
        "memory grew by {} KiB over the second half of the soak",
        rss_second.saturating_sub(rss_first)
    );
    println!("  successes per generation: {ok_per_gen:?}");
    // With the faults gone, each proxy recovers (an account may sit out a cooldown first).
    for (g, h) in gens.iter().enumerate() {
        let mut last = None;
        for attempt in 0..40 {
            let prompt = format!("soak {seed} recovery {attempt} on gen{}", g + 1);
            match one_request(h, &prompt, attempt % 2 == 0).await {
                Outcome::Ok => {
                    last = None;
                    break;
                }
                other => last = Some(other),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            last.is_none(),
            "SOAK_SEED={seed}: gen{} did not recover after the faults: {last:?}",
            g + 1
        );
    }
    for h in &gens {
        assert!(
            eventually(15, || h.sim.stats().ws_open_now == 0).await,
            "SOAK_SEED={seed}: upstream sockets left open: {}",
            h.sim.stats().ws_open_now
        );
    }
    // The gauge is process-wide (both proxies share the recorder).
    let mut active = None;
    for _ in 0..100 {
        let text = gens[0]
            .get("/metrics")
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        active = metric(&text, "el2a_active_streams");
        if let Some(n) = metric(&text, "el2a_ws_reconnects_total") {
            println!("  proxy: {n} WebSocket reconnects");
        }
        if active == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(active, Some(0.0), "SOAK_SEED={seed}: turns still in flight");
}

/// Runs part of the plan, `CONCURRENCY` requests at a time.
async fn run_plan(
    gens: &[Arc<Harness>; 2],
    seed: u64,
    plan: Vec<(u64, usize, bool)>,
) -> Vec<(usize, bool, Outcome)> {
    futures_util::stream::iter(plan)
        .map(|(i, g, stream)| {
            let h = Arc::clone(&gens[g]);
            async move {
                let prompt = format!("soak {seed} request {i} on gen{}", g + 1);
                let outcome =
                    match tokio::time::timeout(REQUEST_TIMEOUT, one_request(&h, &prompt, stream))
                        .await
                    {
                        Ok(o) => o,
                        Err(_) => Outcome::Bad(format!("hang: {prompt}")),
                    };
                (g, stream, outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// This process's resident memory (simulators and proxies run in it).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}
