//! The load: C workers share a pool of N request tickets; each request is timed from send to
//! the first answer token and to its end (read to `[DONE]`, so every stream really completes).
//!
//! With `--tools` each request offers a `Write` tool and asks for a call of it (the simulator's
//! `call` convention): the answer is a sentence and a `<<<TOOL_CALLS>>>` block that the proxy
//! parses into a native tool call. The direct side sends the same prompt the proxy would
//! (tools block included), so both sides stream the same frames and the difference is the
//! proxy's work, the parsing included.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::procs::{BENCH_KEY, Children};
use super::{Door, Result};
use crate::conversation::{Message, Role, prompt};
use crate::tools::{ToolChoice, ToolSet, ToolSpec};
use crate::upstream::cli::{CliAccount, CliClient, Credentials, NoStore};
use crate::upstream::{Account, EngineClient, Turn, TurnEvent, TurnRequest, UpstreamConfig};

/// The upstream client the direct runs use: the door the proxy's account uses.
#[derive(Clone)]
enum Direct {
    Web(Arc<EngineClient>, Arc<Account>),
    Cli(Arc<CliClient>, Arc<CliAccount>),
}

/// Drives requests through the proxy and directly against the simulator.
pub struct Driver {
    http: reqwest::Client,
    proxy_url: String,
    floor_url: String,
    direct: Direct,
    /// The model requests name (the door's own id for it).
    model: &'static str,
    /// `--tools`: the tool every request offers.
    tools: Option<Arc<ToolSet>>,
}

/// Time to first token and to the end of every successful request, and the number that failed.
pub struct Outcome {
    pub ttft: Vec<Duration>,
    pub total: Vec<Duration>,
    pub errors: usize,
}

/// The tool of `--tools` runs, as a client offers it (OpenAI shape) and as the proxy sees it.
fn write_tool() -> (serde_json::Value, ToolSpec) {
    let parameters = json!({"type": "object", "properties": {"file_path": {"type": "string"},
        "content": {"type": "string"}}, "required": ["file_path", "content"]});
    let offer = json!({"type": "function", "function": {"name": "Write",
        "description": "Writes a file", "parameters": parameters}});
    let spec = ToolSpec {
        name: "Write".into(),
        description: "Writes a file".into(),
        parameters,
    };
    (offer, spec)
}

/// The user message of request `i`.
fn user_text(i: usize, tools: bool) -> String {
    if tools {
        format!("bench request {i}\ncall Write {{\"file_path\":\"/tmp/b{i}\",\"content\":\"x\"}}")
    } else {
        format!("bench request {i}")
    }
}

impl Driver {
    pub async fn new(procs: &Children, tools: bool, door: Door) -> Result<Driver> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(2048)
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let cfg = UpstreamConfig::with_urls(&procs.sim_url, &procs.sim_url);
        let (direct, model) = match door {
            Door::Web => {
                let engine = Arc::new(EngineClient::new(cfg).map_err(|e| e.to_string())?);
                let account = Arc::new(
                    Account::new("bench-direct", &procs.direct_cookie)
                        .map_err(|e| e.to_string())?,
                );
                (Direct::Web(engine, account), "GPT5")
            }
            Door::Cli => {
                let client = Arc::new(CliClient::new(&cfg).map_err(|e| e.to_string())?);
                let creds =
                    Credentials::parse(&procs.direct_refresh_token).map_err(|e| e.to_string())?;
                let account = Arc::new(CliAccount::new("bench-direct", &creds, Arc::new(NoStore)));
                (Direct::Cli(client, account), "gpt-5.4")
            }
        };
        let tools =
            tools.then(|| Arc::new(ToolSet::new(vec![write_tool().1], ToolChoice::Auto, true)));
        Ok(Driver {
            http,
            proxy_url: procs.proxy_url.clone(),
            floor_url: procs.floor_url.clone(),
            direct,
            model,
            tools,
        })
    }

    /// The upstream prompt for request `i`: the proxy's own prompt plan for it.
    fn direct_prompt(&self, i: usize) -> String {
        let text = user_text(i, self.tools.is_some());
        let messages = [Message::new(Role::User, text)];
        prompt::for_new_history(&messages, self.tools.as_deref(), usize::MAX).prompt
    }

    /// One request each way, so connection set-up and the first JWT are not measured.
    pub async fn warm_up(&self) -> Result<()> {
        proxied_one(
            &self.http,
            &self.proxy_url,
            self.model,
            usize::MAX,
            self.tools.is_some(),
        )
        .await
        .map_err(|e| format!("warm-up via proxy: {e}"))?;
        direct_one(&self.direct, self.direct_request(usize::MAX))
            .await
            .map_err(|e| format!("warm-up direct: {e}"))?;
        Ok(())
    }

    /// What the direct side sends for request `i` on its door: the web agent's prompt as the
    /// proxy would write it, or the CLI API's Chat Completions body.
    fn direct_request(&self, i: usize) -> DirectRequest {
        match &self.direct {
            Direct::Web(..) => DirectRequest::Prompt(self.direct_prompt(i)),
            Direct::Cli(..) => {
                let mut body = json!({"model": self.model, "stream": true,
                    "stream_options": {"include_usage": true},
                    "messages": [{"role": "user", "content": user_text(i, self.tools.is_some())}]});
                if self.tools.is_some() {
                    body["tools"] = json!([write_tool().0]);
                }
                DirectRequest::Body(body, format!("bench-{i}"))
            }
        }
    }

    pub async fn proxied(&self, concurrency: usize, requests: usize) -> Result<Outcome> {
        let http = self.http.clone();
        let url = self.proxy_url.clone();
        let tools = self.tools.is_some();
        let model = self.model;
        run_workers(concurrency, requests, move |i| {
            let (http, url) = (http.clone(), url.clone());
            async move { proxied_one(&http, &url, model, i, tools).await }
        })
        .await
    }

    /// The same load through the floor relay (web door, no tools).
    pub async fn floored(&self, concurrency: usize, requests: usize) -> Result<Outcome> {
        let http = self.http.clone();
        let url = self.floor_url.clone();
        run_workers(concurrency, requests, move |i| {
            let (http, url) = (http.clone(), url.clone());
            async move { floored_one(&http, &url, i).await }
        })
        .await
    }

    pub async fn direct(&self, concurrency: usize, requests: usize) -> Result<Outcome> {
        let direct = self.direct.clone();
        let reqs: Arc<Vec<DirectRequest>> =
            Arc::new((0..requests).map(|i| self.direct_request(i)).collect());
        run_workers(concurrency, requests, move |i| {
            let (direct, reqs) = (direct.clone(), reqs.clone());
            async move { direct_one(&direct, reqs[i].clone()).await }
        })
        .await
    }
}

async fn run_workers<F, Fut>(concurrency: usize, requests: usize, one: F) -> Result<Outcome>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = std::result::Result<(Duration, Duration), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (next, one) = (next.clone(), one.clone());
        workers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                match one(i).await {
                    Ok(t) => times.push(t),
                    Err(e) => errors.push(e),
                }
            }
            (times, errors)
        }));
    }
    let mut out = Outcome {
        ttft: Vec::with_capacity(requests),
        total: Vec::with_capacity(requests),
        errors: 0,
    };
    let mut first_error = None;
    for w in workers {
        let (t, e) = w.await.map_err(|e| format!("worker panicked: {e}"))?;
        out.ttft.extend(t.iter().map(|x| x.0));
        out.total.extend(t.iter().map(|x| x.1));
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

/// One streamed request through the proxy: times to the first content chunk and to `[DONE]`.
/// With `tools`, the answer must end with `finish_reason: tool_calls`.
async fn proxied_one(
    http: &reqwest::Client,
    url: &str,
    model: &str,
    i: usize,
    tools: bool,
) -> std::result::Result<(Duration, Duration), String> {
    let mut body = json!({"model": model, "stream": true,
        "messages": [{"role": "user", "content": user_text(i, tools)}]});
    if tools {
        body["tools"] = json!([write_tool().0]);
    }
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
    let mut called = false;
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        let answered = (contains(&chunk, b"\"content\":\"") && !only_empty_content(&chunk))
            || contains(&chunk, b"\"tool_calls\"");
        if first.is_none() && answered {
            first = Some(started.elapsed());
        }
        called |= contains(&chunk, b"\"finish_reason\":\"tool_calls\"");
        tail.extend_from_slice(&chunk);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    let total = started.elapsed();
    if contains(&tail, b"\"error\"") || !contains(&tail, b"[DONE]") {
        return Err("stream did not end with [DONE]".into());
    }
    if tools && !called {
        return Err("the answer held no tool call".into());
    }
    first
        .map(|f| (f, total))
        .ok_or_else(|| "no content".to_string())
}

/// One request through the floor: times to the first frame of answer text (the simulator's
/// `chat` updates, as the floor copies them) and to `[DONE]`.
async fn floored_one(
    http: &reqwest::Client,
    url: &str,
    i: usize,
) -> std::result::Result<(Duration, Duration), String> {
    let started = Instant::now();
    let mut resp = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "GPT5", "stream": true,
            "messages": [{"role": "user", "content": user_text(i, false)}]}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("floor: HTTP {}", resp.status()));
    }
    let mut first = None;
    let mut tail = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if first.is_none() && contains(&chunk, br#"\"type\":\"chat\""#) {
            first = Some(started.elapsed());
        }
        tail.extend_from_slice(&chunk);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    let total = started.elapsed();
    if !contains(&tail, b"[DONE]") {
        return Err("floor: stream did not end with [DONE]".into());
    }
    first
        .map(|f| (f, total))
        .ok_or_else(|| "floor: no answer text".to_string())
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

/// What one direct request sends.
#[derive(Clone)]
enum DirectRequest {
    /// The web agent's prompt.
    Prompt(String),
    /// The CLI API's body and the session key.
    Body(serde_json::Value, String),
}

/// The same turn with the upstream client alone: times to the first answer event (text or a
/// tool call) and to the end of the turn.
async fn direct_one(
    direct: &Direct,
    req: DirectRequest,
) -> std::result::Result<(Duration, Duration), String> {
    let started = Instant::now();
    let turn: std::result::Result<Turn, _> = match (direct, req) {
        (Direct::Web(engine, account), DirectRequest::Prompt(prompt)) => {
            let req = TurnRequest {
                model: "GPT5".to_string(),
                prompt,
                continue_history: None,
                images: Vec::new(),
            };
            engine.start_turn(account, req).await
        }
        (Direct::Cli(client, account), DirectRequest::Body(body, key)) => {
            let session = crate::upstream::cli::session_id(&key);
            client.start_turn(account, &session, body).await
        }
        _ => return Err("a request for the other door".into()),
    };
    let mut turn = turn.map_err(|e| e.to_string())?;
    let mut first = None;
    loop {
        match turn.next().await {
            Some(Ok(TurnEvent::Content(_) | TurnEvent::ToolCallStart { .. }))
                if first.is_none() =>
            {
                first = Some(started.elapsed())
            }
            Some(Ok(TurnEvent::Finished { .. })) => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("stream ended early".into()),
        }
    }
    let total = started.elapsed();
    first
        .map(|f| (f, total))
        .ok_or_else(|| "no content".to_string())
}
