//! Secrets never appear in logs, even at trace level: the real binary runs with RUST_LOG=trace
//! against the simulator and its whole output is searched for the cookie, the rotated cookies,
//! any JWT and the API key.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use enginelabs_2api::simulator::{SimConfig, Simulator};
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

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
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("el2a-logs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log_path = dir.join("out.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"))
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("RUST_LOG", "trace")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("API_MASTER_KEY", KEY)
        .env("CLERK_COOKIE", &cookie)
        .env("CLERK_BASE_URL", sim.url())
        .env("ENGINE_BASE_URL", sim.url())
        .env("STORE", "memory")
        .stdout(Stdio::from(log.try_clone().expect("clone")))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the binary");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the binary started");
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
    let _ = child.start_kill();
    let _ = child.wait().await;
    let logs = std::fs::read_to_string(&log_path).expect("read logs");
    let _ = std::fs::remove_dir_all(&dir);
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
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("el2a-reqid-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log_path = dir.join("out.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"))
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("RUST_LOG", "enginelabs_2api=debug")
        .env("LOG_FORMAT", "json")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("API_MASTER_KEY", KEY)
        .env("CLERK_COOKIE", sim.account().cookie)
        .env("CLERK_BASE_URL", sim.url())
        .env("ENGINE_BASE_URL", sim.url())
        .env("STORE", "memory")
        .stdout(Stdio::from(log.try_clone().expect("clone")))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the binary");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let _ = child.start_kill();
    let _ = child.wait().await;
    let logs = std::fs::read_to_string(&log_path).expect("read logs");
    let _ = std::fs::remove_dir_all(&dir);
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
    assert!(mine.iter().any(|v| v["fields"]["message"] == "answered"));
}
