//! The load: C workers share a pool of N request tickets; each request is timed from send to
//! the first answer token, and read to its end so that every stream really completes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::procs::{BENCH_KEY, Children};
use crate::run::anyhow_like::Result;
use crate::upstream::{Account, EngineClient, TurnEvent, TurnRequest, UpstreamConfig};

/// Drives requests through the proxy and directly against the simulator.
pub struct Driver {
    http: reqwest::Client,
    proxy_url: String,
    engine: Arc<EngineClient>,
    account: Arc<Account>,
}

/// Time to first token of every successful request, and the number that failed.
pub struct Outcome {
    pub ttft: Vec<Duration>,
    pub errors: usize,
}

const MODEL: &str = "GPT5";

impl Driver {
    pub async fn new(procs: &Children, _words: usize) -> Result<Driver> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(2048)
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let cfg = UpstreamConfig::with_urls(&procs.sim_url, &procs.sim_url);
        let engine = Arc::new(EngineClient::new(cfg).map_err(|e| e.to_string())?);
        let account = Arc::new(
            Account::new("bench-direct", &procs.direct_cookie).map_err(|e| e.to_string())?,
        );
        Ok(Driver {
            http,
            proxy_url: procs.proxy_url.clone(),
            engine,
            account,
        })
    }

    /// One request each way, so connection set-up and the first JWT are not measured.
    pub async fn warm_up(&self) -> Result<()> {
        proxied_one(&self.http, &self.proxy_url, "warm up")
            .await
            .map_err(|e| format!("warm-up via proxy: {e}"))?;
        direct_one(&self.engine, &self.account, "warm up")
            .await
            .map_err(|e| format!("warm-up direct: {e}"))?;
        Ok(())
    }

    pub async fn proxied(&self, concurrency: usize, requests: usize) -> Result<Outcome> {
        let http = self.http.clone();
        let url = self.proxy_url.clone();
        run_workers(concurrency, requests, move |i| {
            let (http, url) = (http.clone(), url.clone());
            async move { proxied_one(&http, &url, &format!("bench request {i}")).await }
        })
        .await
    }

    pub async fn direct(&self, concurrency: usize, requests: usize) -> Result<Outcome> {
        let engine = self.engine.clone();
        let account = self.account.clone();
        run_workers(concurrency, requests, move |i| {
            let (engine, account) = (engine.clone(), account.clone());
            async move { direct_one(&engine, &account, &format!("bench request {i}")).await }
        })
        .await
    }
}

async fn run_workers<F, Fut>(concurrency: usize, requests: usize, one: F) -> Result<Outcome>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = std::result::Result<Duration, String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (next, one) = (next.clone(), one.clone());
        workers.push(tokio::spawn(async move {
            let mut ttft = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                match one(i).await {
                    Ok(t) => ttft.push(t),
                    Err(e) => errors.push(e),
                }
            }
            (ttft, errors)
        }));
    }
    let mut out = Outcome {
        ttft: Vec::with_capacity(requests),
        errors: 0,
    };
    let mut first_error = None;
    for w in workers {
        let (t, e) = w.await.map_err(|e| format!("worker panicked: {e}"))?;
        out.ttft.extend(t);
        out.errors += e.len();
        if first_error.is_none() {
            first_error = e.into_iter().next();
        }
    }
    if let Some(e) = first_error {
        eprintln!("  {} requests failed; first error: {e}", out.errors);
    }
    Ok(out)
}

/// One streamed request through the proxy: time to the first content chunk; read to `[DONE]`.
async fn proxied_one(
    http: &reqwest::Client,
    url: &str,
    prompt: &str,
) -> std::result::Result<Duration, String> {
    let body =
        json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": prompt}]});
    let started = Instant::now();
    let resp = http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(BENCH_KEY)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let mut resp = resp;
    let mut first = None;
    let mut tail = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if first.is_none() && contains(&chunk, b"\"content\":\"") && !only_empty_content(&chunk) {
            first = Some(started.elapsed());
        }
        tail.extend_from_slice(&chunk);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    if contains(&tail, b"\"error\"") || !contains(&tail, b"[DONE]") {
        return Err("stream did not end with [DONE]".into());
    }
    first.ok_or_else(|| "no content".to_string())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// True when every `"content":"` in the chunk is immediately closed (the role chunk).
fn only_empty_content(chunk: &[u8]) -> bool {
    let pat = b"\"content\":\"";
    let mut i = 0;
    while let Some(pos) = chunk[i..].windows(pat.len()).position(|w| w == pat) {
        let after = i + pos + pat.len();
        if chunk.get(after) != Some(&b'"') {
            return false;
        }
        i = after;
    }
    true
}

/// The same turn with the upstream client alone: time to the first content event.
async fn direct_one(
    engine: &EngineClient,
    account: &Arc<Account>,
    prompt: &str,
) -> std::result::Result<Duration, String> {
    let started = Instant::now();
    let req = TurnRequest {
        model: MODEL.to_string(),
        prompt: prompt.to_string(),
        continue_history: None,
        images: Vec::new(),
    };
    let mut turn = engine
        .start_turn(account, req)
        .await
        .map_err(|e| e.to_string())?;
    let mut first = None;
    loop {
        match turn.next().await {
            Some(Ok(TurnEvent::Content(_))) if first.is_none() => first = Some(started.elapsed()),
            Some(Ok(TurnEvent::Finished { .. })) => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("stream ended early".into()),
        }
    }
    first.ok_or_else(|| "no content".to_string())
}
