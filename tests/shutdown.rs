//! Graceful shutdown of the real binary: after SIGTERM a running stream still completes within
//! the grace period (`SHUTDOWN_GRACE_SECS`) and the process exits 0; a stream longer than the
//! grace period is cut and the process still exits 0; a bad setting stops the start.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::proc::{Proxy, TempDir, sim_env, spawn_proxy};
use common::{KEY, sse_data, stream_text, user};
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator, reply_text};
use serde_json::json;

const WORDS: usize = 12;

async fn sim(slow_frame_ms: u64) -> Simulator {
    let sim = Simulator::start(SimConfig {
        reply_words: WORDS,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    sim.set_faults(Faults {
        slow_frame_ms,
        ..Faults::default()
    });
    sim
}

fn env(sim: &Simulator, grace: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = sim_env(sim, &[("MODELS", "GPT5".to_string())]);
    if let Some(g) = grace {
        env.push(("SHUTDOWN_GRACE_SECS", g.to_string()));
    }
    env
}

/// Starts a streamed completion and returns it once its first content chunk has arrived, with
/// the body text read so far.
async fn stream_started(base: &str, prompt: &str) -> (reqwest::Response, String) {
    let mut resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "GPT5", "stream": true, "messages": [user(prompt)]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    while !text.contains("\"content\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
            .await
            .expect("first chunk in time")
            .expect("body")
            .expect("stream not over yet");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    (resp, text)
}

/// Reads the rest of a body; stops at the end or at the first transport error.
async fn read_rest(mut resp: reqwest::Response, mut text: String) -> (String, bool) {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), resp.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => return (text, true),
            Ok(Err(_)) | Err(_) => return (text, false),
        }
    }
}

fn sigterm(proxy: &Proxy) {
    let pid = proxy.child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits (as a hang guard, not a timing assertion) for the process to exit; its exit status.
async fn exit_status(mut proxy: Proxy, secs: u64) -> Option<std::process::ExitStatus> {
    tokio::time::timeout(Duration::from_secs(secs), proxy.child.wait())
        .await
        .ok()
        .and_then(Result::ok)
}

#[tokio::test]
async fn sigterm_lets_a_running_stream_finish_then_exits_0() {
    let sim = sim(150).await;
    let dir = TempDir::new("shutdown-finish");
    let proxy = spawn_proxy(&env(&sim, None), &dir.0.join("p.log")).await;
    let base = proxy.base.clone();
    let (resp, text) = stream_started(&base, "finish me").await;
    sigterm(&proxy);
    // New connections are refused while the stream drains (once the signal is handled).
    let mut refused = false;
    for _ in 0..100 {
        let probe = reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if probe.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "still accepting after SIGTERM");
    let (text, ended) = read_rest(resp, text).await;
    assert!(ended, "the stream ended normally");
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    assert_eq!(stream_text(&data).0, reply_text("finish me", 1, WORDS));
    let logs = proxy.logs();
    let status = exit_status(proxy, 30).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}; log:\n{logs}"
    );
}

#[tokio::test]
async fn a_stream_longer_than_the_grace_period_is_cut_and_the_exit_is_still_0() {
    // 12 words at 2 s per frame: far longer than the 1 s grace and the 15 s hang guard below.
    let sim = sim(2_000).await;
    let dir = TempDir::new("shutdown-cut");
    let proxy = spawn_proxy(&env(&sim, Some("1")), &dir.0.join("p.log")).await;
    let (resp, text) = stream_started(&proxy.base, "too slow").await;
    sigterm(&proxy);
    let status = exit_status(proxy, 15).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}"
    );
    let (text, _) = read_rest(resp, text).await;
    let data = sse_data(&text);
    assert_ne!(
        stream_text(&data).0,
        reply_text("too slow", 1, WORDS),
        "the stream was cut, not finished"
    );
}

#[tokio::test]
async fn a_bad_grace_setting_stops_the_start_with_a_clear_error() {
    let sim = sim(0).await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"));
    cmd.arg("serve")
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", common::proc::free_port().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env(&sim, Some("soon")) {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("exits")
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SHUTDOWN_GRACE_SECS"), "{stderr}");
}
