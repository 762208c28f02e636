//! Test harness: the simulator and the real router, both on `127.0.0.1:0`, driven over sockets.
#![allow(dead_code)]

pub mod admin;
pub mod anthropic;
pub mod cli;
pub mod metrics;
pub mod pool;
pub mod proc;
pub mod redis;
pub mod relay;
pub mod reply;
pub mod sim;
pub mod store;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use enginelabs_2api::config::{Config, ConfigArgs};
use enginelabs_2api::server::{AppState, app, listener};
use enginelabs_2api::simulator::{SimConfig, Simulator};
use enginelabs_2api::store::{Store, StoreLimits, memory::MemoryStore};
use serde_json::{Value, json};

pub const KEY: &str = "sk-test-key-123";

/// Settings as the binary would read them from this environment, pointed at `sim`.
pub fn args_for(sim: &Simulator) -> ConfigArgs {
    let (url, cookie) = (sim.url(), sim.account().cookie);
    let mut a = ConfigArgs::from_pairs(&[
        ("API_MASTER_KEY", KEY),
        ("CLERK_COOKIE", &cookie),
        ("CLERK_BASE_URL", &url),
        ("ENGINE_BASE_URL", &url),
        ("STORE", "memory"),
        ("UPSTREAM_PROTOCOL", "auto"),
        ("MODELS", "ClaudeSonnet4_5,GPT5,gpt_5_4"),
        ("REQUEST_TIMEOUT_SECS", "5"),
        ("STREAM_IDLE_TIMEOUT_SECS", "5"),
        ("REASONING", "field"),
        ("MAX_BODY_BYTES", "65536"),
    ])
    .expect("valid settings");
    // Whatever the process environment says, these stay unset.
    a.api_keys = None;
    a.default_model = None;
    a
}

pub struct Harness {
    pub sim: Simulator,
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a simulator and a proxy in front of it. `tweak` adjusts the proxy's settings.
pub async fn start(sim_cfg: SimConfig, tweak: impl FnOnce(&mut ConfigArgs)) -> Harness {
    let sim = Simulator::start(sim_cfg).await.expect("simulator starts");
    let mut a = args_for(&sim);
    tweak(&mut a);
    let store = memory_store(&a);
    start_with(sim, a, store).await
}

/// Starts a simulator and a proxy served by the binary's own accept loop (with its connection
/// cap and timeouts) rather than `axum::serve`.
pub async fn start_served(sim_cfg: SimConfig, tweak: impl FnOnce(&mut ConfigArgs)) -> Harness {
    let sim = Simulator::start(sim_cfg).await.expect("simulator starts");
    let mut a = args_for(&sim);
    tweak(&mut a);
    let store = memory_store(&a);
    serve(sim, a, store, Served::AcceptLoop).await
}

/// An empty memory store with the limits of these settings.
fn memory_store(a: &ConfigArgs) -> Arc<dyn Store> {
    let config = Config::from_args(a).expect("valid config");
    Arc::new(MemoryStore::new(StoreLimits {
        conversation_ttl: config.conversation_ttl,
        max_conversations: config.max_conversations,
    }))
}

/// Starts a proxy with the given settings and store in front of an existing simulator.
pub async fn start_with(sim: Simulator, a: ConfigArgs, store: Arc<dyn Store>) -> Harness {
    serve(sim, a, store, Served::Axum).await
}

/// What serves the router in a test.
enum Served {
    /// `axum::serve`: no limits of its own.
    Axum,
    /// `server::listener::serve`, as the binary does.
    AcceptLoop,
}

async fn serve(sim: Simulator, a: ConfigArgs, store: Arc<dyn Store>, how: Served) -> Harness {
    let config = Config::from_args(&a).expect("valid config");
    let limits = config.connections;
    let state = AppState::with_store(config, store)
        .await
        .expect("state builds");
    let tcp = listener::bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let base = format!("http://{}", tcp.local_addr().expect("addr"));
    let router = app(state.clone());
    let server = tokio::spawn(async move {
        match how {
            Served::Axum => {
                // With the peer address in each request: the admin key back-off counts per
                // client address (`server::admin::lockout`), and tests check that from
                // several loopback addresses. (The accept loop adds it itself.)
                let svc = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
                let _ = axum::serve(tcp, svc).await;
            }
            Served::AcceptLoop => {
                listener::serve(tcp, router, limits, std::future::pending()).await;
            }
        }
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    Harness {
        sim,
        base,
        state,
        http,
        server,
    }
}

impl Harness {
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(KEY)
    }

    /// A client whose connections come from `ip` (any of 127.0.0.0/8 works on loopback), for
    /// checks kept per client address.
    pub fn client_from(&self, ip: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    /// A non-streamed completion; returns (status, body).
    pub async fn chat(&self, body: Value) -> (u16, Value) {
        let resp = self
            .post("/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.expect("json body");
        (status, v)
    }

    /// A streamed completion read to its end; returns (status, SSE data payloads).
    pub async fn chat_stream(&self, mut body: Value) -> (u16, Vec<String>) {
        body["stream"] = json!(true);
        let resp = self
            .post("/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, sse_data(&text))
    }
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let data: Vec<&str> = block
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.trim_start())
            .collect();
        if !data.is_empty() {
            out.push(data.join("\n"));
        }
    }
    out
}

/// Concatenated `content` and `reasoning_content` deltas of parsed chunks.
pub fn stream_text(data: &[String]) -> (String, String) {
    let (mut content, mut reasoning) = (String::new(), String::new());
    for d in data {
        if d == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(d).expect("chunk is JSON");
        if let Some(delta) = v["choices"].get(0).map(|c| &c["delta"]) {
            content.push_str(delta["content"].as_str().unwrap_or(""));
            reasoning.push_str(delta["reasoning_content"].as_str().unwrap_or(""));
        }
    }
    (content, reasoning)
}

pub fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

pub fn assistant(text: &str) -> Value {
    json!({"role": "assistant", "content": text})
}

/// Polls `cond` every 20 ms for up to `secs` seconds.
pub async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}
