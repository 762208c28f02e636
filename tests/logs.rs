//! Secrets never appear in logs, even at trace level: the real binary runs with RUST_LOG=trace
//! against the simulator and its whole output is searched for the cookie, the rotated cookies,
//! any JWT and the API key.

mod common;

use std::time::Duration;

use common::proc::{TempDir, sim_env, spawn_proxy};
use common::*;
use enginelabs_2api::simulator::{SimConfig, Simulator};
use serde_json::json;

#[tokio::test]
async fn secrets_never_appear_in_trace_logs() {
    let sim = Simulator::start(SimConfig {
        token_ttl: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let cookie = sim.account().cookie;
    let client_value = cookie
        .split(';')
        .find_map(|p| p.trim().strip_prefix("__client="))
        .expect("__client in the simulator's cookie")
        .to_string();
    let dir = TempDir::new("logs");
    let log_path = dir.0.join("out.log");
    let env = sim_env(&sim, &[("RUST_LOG", "trace".to_string())]);
    let proxy = spawn_proxy(&env, &log_path).await;
    let base = proxy.base.clone();
    let http = reqwest::Client::new();
    for (i, stream) in [false, true, false].into_iter().enumerate() {
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(
                &json!({"model": "GPT5", "stream": stream, "messages": [user(&format!("hi {i}"))]}),
            )
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
        let _ = r.text().await;
        // Let the 2 s tokens age so that mints (and cookie rotations) happen during the run.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // A wrong key is logged as a rejection, but the key itself is not.
    let _ = http
        .get(format!("{base}/v1/models"))
        .bearer_auth("sk-wrong-secret-999")
        .send()
        .await;
    proxy.kill().await;
    let logs = std::fs::read_to_string(&log_path).expect("read logs");
    assert!(logs.len() > 1000, "trace logging produced output");
    assert!(sim.stats().mints >= 2, "tokens were minted during the run");
    assert!(
        !logs.contains(&client_value),
        "the pasted __client value leaked"
    );
    assert!(!logs.contains(KEY), "the API key leaked");
    assert!(
        !logs.contains("sk-wrong-secret-999"),
        "a presented key leaked"
    );
    assert!(!logs.contains("eyJ"), "a JWT (or other base64 JSON) leaked");
    let current = sim.account().cookie;
    let rotated = current
        .split(';')
        .find_map(|p| p.trim().strip_prefix("__client="))
        .expect("rotated");
    assert_ne!(rotated, client_value, "the simulator rotated the cookie");
    assert!(!logs.contains(rotated), "a rotated __client value leaked");
}

#[tokio::test]
async fn json_logs_carry_the_request_id_in_every_line_of_the_request() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let dir = TempDir::new("reqid");
    let log_path = dir.0.join("out.log");
    let env = sim_env(
        &sim,
        &[
            ("RUST_LOG", "enginelabs_2api=debug".to_string()),
            ("LOG_FORMAT", "json".to_string()),
        ],
    );
    let proxy = spawn_proxy(&env, &log_path).await;
    let base = proxy.base.clone();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("x-request-id", "req-trace-4711")
        .json(&json!({"model": "GPT5", "messages": [user("trace me")]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-trace-4711")
    );
    let _ = r.text().await;
    proxy.kill().await;
    let logs = std::fs::read_to_string(&log_path).expect("read logs");
    let mine: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.to_string().contains("req-trace-4711"))
        .collect();
    assert!(
        mine.len() >= 2,
        "several JSON log lines carry the request id:\n{logs}"
    );
    assert!(
        mine.iter()
            .any(|v| v["fields"]["message"] == "starting upstream turn"),
        "the upstream part of the request is tagged too:\n{logs}"
    );
    // The access line is written when the body ends: it has the time to the headers and to
    // the end, besides the status.
    let answered = mine
        .iter()
        .find(|v| v["fields"]["message"] == "answered")
        .unwrap_or_else(|| panic!("an access line:\n{logs}"));
    assert_eq!(answered["fields"]["status"], 200, "{answered}");
    let headers = answered["fields"]["headers_ms"]
        .as_u64()
        .expect("headers_ms");
    let total = answered["fields"]["elapsed_ms"]
        .as_u64()
        .expect("elapsed_ms");
    assert!(total >= headers, "{answered}");
}

/// Control characters in what clients send (a model name here) cannot forge log lines or
/// colour the terminal: the pretty format escapes them in every field, message included.
#[tokio::test]
async fn client_strings_are_escaped_in_pretty_logs() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let dir = TempDir::new("escape");
    let log_path = dir.0.join("out.log");
    let env = sim_env(
        &sim,
        &[
            ("RUST_LOG", "debug".to_string()),
            ("LOG_FORMAT", "pretty".to_string()),
        ],
    );
    let proxy = spawn_proxy(&env, &log_path).await;
    let forged = "evil\r\n2099-01-01T00:00:00Z  INFO FORGED admin login\u{1b}[2J\u{7}";
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", proxy.base))
        .bearer_auth(KEY)
        .json(&json!({"model": forged, "messages": [user("x")]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 404);
    proxy.kill().await;
    let logs = std::fs::read_to_string(&log_path).expect("read logs");
    assert!(logs.contains("evil"), "the rejection was logged:\n{logs}");
    assert!(!logs.contains('\u{1b}'), "a raw ESC reached the log");
    assert!(!logs.contains('\r') && !logs.contains('\u{7}'));
    assert!(
        !logs.lines().any(|l| l.starts_with("2099-01-01")),
        "a forged line:\n{logs}"
    );
}
