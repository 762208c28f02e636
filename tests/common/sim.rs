//! Helpers that drive the simulator directly over HTTP and WebSocket, as a client of cto.new
//! would: Clerk mints, EngineLabs calls of both generations, the stream's frames and their text.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use enginelabs_2api::simulator::{SimAccount, SimConfig, SimStats, Simulator};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const ORIGIN: &str = "https://cto.new";

pub fn cfg() -> SimConfig {
    SimConfig {
        reply_words: 12,
        frame_delay: Duration::ZERO,
        ..SimConfig::default()
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub async fn get_client(sim: &Simulator, cookie: &str) -> reqwest::Response {
    http()
        .get(format!(
            "{}/v1/client?__clerk_api_version=2025-11-10",
            sim.url()
        ))
        .header("Cookie", cookie)
        .header("Origin", ORIGIN)
        .send()
        .await
        .unwrap()
}

pub async fn mint_raw(sim: &Simulator, sid: &str, cookie: &str) -> reqwest::Response {
    http()
        .post(format!(
            "{}/v1/client/sessions/{sid}/tokens?__clerk_api_version=2025-11-10&_clerk_js_version=6.7.3",
            sim.url()
        ))
        .header("Cookie", cookie)
        .header("Origin", ORIGIN)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("organization_id=")
        .send()
        .await
        .unwrap()
}

pub async fn mint(sim: &Simulator, acc: &SimAccount) -> String {
    let resp = mint_raw(sim, &acc.session_id, &acc.cookie).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["jwt"].as_str().unwrap().to_owned()
}

/// An EngineLabs call with a bearer token and an optional JSON body.
pub async fn api(
    sim: &Simulator,
    method: reqwest::Method,
    path: &str,
    jwt: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = http()
        .request(method, format!("{}{path}", sim.url()))
        .bearer_auth(jwt)
        .header("Origin", ORIGIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub fn ws_url(sim: &Simulator, history: &str, query: &str) -> String {
    format!(
        "{}/engine-agent/chat-histories/{history}/buffer/stream?{query}",
        sim.url().replacen("http", "ws", 1)
    )
}

pub async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next JSON text frame, `None` when the socket ends. Fails the test after 10 s of silence.
pub async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s");
        match msg {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Frames up to and including the `state{inProgress:false}` that follows an `inProgress:true`.
pub async fn read_turn(ws: &mut Ws) -> Vec<Value> {
    let mut frames = Vec::new();
    let mut started = false;
    while let Some(f) = next_json(ws).await {
        let in_progress = f["state"]["inProgress"].as_bool();
        frames.push(f);
        match in_progress {
            Some(true) => started = true,
            Some(false) if started => return frames,
            _ => {}
        }
    }
    panic!("socket ended mid-turn: {frames:?}");
}

/// The inner message of an `update` frame.
pub fn inner(frame: &Value) -> Option<Value> {
    (frame["type"] == "update").then(|| {
        let buf = frame["buffer"].as_str().unwrap();
        assert!(buf.ends_with('\n'));
        serde_json::from_str(buf).unwrap()
    })
}

/// Concatenated `chat.content` of every inner message of `kind`.
pub fn text_of(frames: &[Value], kind: &str) -> String {
    frames
        .iter()
        .filter_map(inner)
        .filter(|m| m["type"] == kind)
        .map(|m| m["chat"]["content"].as_str().unwrap().to_owned())
        .collect()
}

/// Sets up a Gen-2 project: preferred model, project. Returns (project id, workspace id).
pub async fn gen2_project(sim: &Simulator, jwt: &str) -> (String, String) {
    let r = api(
        sim,
        reqwest::Method::PATCH,
        "/teams/preferred-model",
        jwt,
        Some(json!({"modelKey": "gpt_5_4"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = api(
        sim,
        reqwest::Method::POST,
        "/projects/create-hosted",
        jwt,
        Some(json!({"projectName": "scratch-test"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let p: Value = r.json().await.unwrap();
    (
        p["projectId"].as_str().unwrap().to_owned(),
        p["workspaceId"].as_str().unwrap().to_owned(),
    )
}

pub fn gen2_query(acc: &SimAccount, workspace: &str) -> String {
    format!(
        "token={}%3A{}&workspaceId={workspace}",
        acc.user_id, acc.org_id
    )
}

pub async fn gen2_trigger(sim: &Simulator, jwt: &str, project: &str, prompt: &str) -> StatusCode {
    api(
        sim,
        reqwest::Method::POST,
        "/engine-agent/chat",
        jwt,
        Some(json!({"prompt": STANDARD.encode(prompt), "chatHistoryId": project, "encoded": true})),
    )
    .await
    .status()
}

pub async fn gen1_trigger(
    sim: &Simulator,
    jwt: &str,
    history: &str,
    prompt: &str,
) -> reqwest::Response {
    api(
        sim,
        reqwest::Method::POST,
        "/engine-agent/chat",
        jwt,
        Some(json!({"prompt": prompt, "chatHistoryId": history, "adapterName": "ClaudeSonnet4_5"})),
    )
    .await
}

/// Waits (up to 10 s) for the counters to satisfy `pred`; the test fails otherwise.
pub async fn wait_stats(sim: &Simulator, pred: impl Fn(&SimStats) -> bool) {
    for _ in 0..1000 {
        if pred(&sim.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("stats never reached the expected state: {:?}", sim.stats());
}

/// One Gen-2 chat of the first account, with its socket open: each [`Gen2Chat::say`] is one
/// turn.
pub struct Gen2Chat {
    pub jwt: String,
    pub project: String,
    pub ws: Ws,
}

impl Gen2Chat {
    /// A new project with an open socket (the idle state already read).
    pub async fn open(sim: &Simulator) -> Gen2Chat {
        let acc = sim.account();
        let jwt = mint(sim, &acc).await;
        let (project, workspace) = gen2_project(sim, &jwt).await;
        let mut ws = connect(&ws_url(sim, &project, &gen2_query(&acc, &workspace))).await;
        next_json(&mut ws).await.unwrap();
        Gen2Chat { jwt, project, ws }
    }

    /// Triggers one turn and returns all its frames.
    pub async fn turn(&mut self, sim: &Simulator, prompt: &str) -> Vec<Value> {
        let status = gen2_trigger(sim, &self.jwt, &self.project, prompt).await;
        assert_eq!(status, StatusCode::ACCEPTED, "trigger of {prompt:?}");
        read_turn(&mut self.ws).await
    }

    /// Triggers one turn and returns its answer (the concatenated `chat` deltas).
    pub async fn say(&mut self, sim: &Simulator, prompt: &str) -> String {
        text_of(&self.turn(sim, prompt).await, "chat")
    }
}
