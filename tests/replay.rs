//! Captures as regression tests: `doctor --capture` against the simulator writes a capture
//! with no cookie, token, key or prompt text in it, and that capture served by
//! `simulate --replay` passes the doctor's whole run again (any cookie and refresh token do).
//! The hand-written fixture of each door (`tests/fixtures/capture-*.json`) passes the same
//! way.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::proc::{TempDir, free_port};
use enginelabs_2api::doctor::web::TURN_PROMPT;
use enginelabs_2api::simulator::{SimConfig, Simulator};

/// `simulate --replay FILE` as a child process, ready to answer.
struct Replay {
    _child: tokio::process::Child,
    url: String,
}

async fn replay(file: &std::path::Path) -> Replay {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"))
        .args(["simulate", "--port", &port.to_string(), "--replay"])
        .arg(file)
        .env_clear()
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the replay");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Replay { _child: child, url };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replay did not start");
}

/// Runs `doctor --yes` with `env` (memory store, no credentials file) and its `args`.
async fn doctor(env: &[(&str, String)], args: &[&str]) -> (i32, String) {
    let dir = TempDir::new("replay-doctor");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"));
    cmd.args(["doctor", "--yes"])
        .args(args)
        .current_dir(&dir.0)
        .env_clear()
        .env("CTO_CREDENTIALS_FILE", "none")
        .env("STORE", "memory")
        .env("REQUEST_TIMEOUT_SECS", "5")
        .env("STREAM_IDLE_TIMEOUT_SECS", "5")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the doctor finished in time")
        .expect("run the doctor");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Any credentials, pointed at `url`.
fn stand_in_env(url: &str, web: bool, cli: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("CLERK_BASE_URL", url.to_string()),
        ("ENGINE_BASE_URL", url.to_string()),
    ];
    if web {
        env.push(("CLERK_COOKIE", "__client=any-cookie-will-do".into()));
    }
    if cli {
        env.push(("CTO_REFRESH_TOKEN", "any-refresh-token-will-do".into()));
    }
    env
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[tokio::test]
async fn the_hand_written_web_capture_replays_and_passes() {
    let r = replay(&fixture("capture-web.json")).await;
    let (code, out) = doctor(&stand_in_env(&r.url, true, false), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("✓ test turn: model `ClaudeSonnet4_5` answered \"ok\""),
        "{out}"
    );
    assert!(out.contains("✓ tool emulation:"), "{out}");
}

#[tokio::test]
async fn the_hand_written_cli_capture_replays_and_passes() {
    let r = replay(&fixture("capture-cli.json")).await;
    let (code, out) = doctor(&stand_in_env(&r.url, false, true), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("✓ cli completion: model `gpt-5.4` answered \"ok\""),
        "{out}"
    );
    assert!(out.contains("✓ cli tool call:"), "{out}");
}

#[tokio::test]
async fn a_capture_of_the_simulator_holds_no_secret_and_replays() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let user = sim.account().user_id;
    let cookie = sim.account().cookie;
    let login = sim.cli_login(&user).unwrap();
    let dir = TempDir::new("capture");
    let file = dir.0.join("capture.json");
    let env = vec![
        ("CLERK_BASE_URL", sim.url()),
        ("ENGINE_BASE_URL", sim.url()),
        ("CLERK_COOKIE", cookie.clone()),
        ("CTO_REFRESH_TOKEN", login.refresh_token.clone()),
        ("API_MASTER_KEY", "sk-capture-master-key-123".into()),
    ];
    let (code, out) = doctor(&env, &["--capture", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}");
    let capture = std::fs::read_to_string(&file).unwrap();
    let client = cookie
        .split("__client=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let rotated_cookie = sim.account().cookie;
    let rotated_token = sim.cli_account(&user).unwrap().refresh_token;
    for (what, secret) in [
        ("the cookie", client.as_str()),
        ("the rotated cookie", &rotated_cookie),
        ("the refresh token", &login.refresh_token),
        ("the rotated refresh token", &rotated_token),
        ("the API key", "sk-capture-master-key-123"),
        ("a JWT", "eyJ"),
        ("a Bearer header", "Bearer "),
        ("the test prompt", TURN_PROMPT),
        ("the tool prompt", "Call the tool `echo`"),
        ("the tools block", "You can call tools"),
    ] {
        assert!(!capture.contains(secret), "{what} is in the capture");
    }
    assert!(
        capture.contains("/engine-agent/chat"),
        "the calls are there"
    );
    assert!(capture.contains("/oauth/token"), "the calls are there");

    drop(sim);
    let r = replay(&file).await;
    let (code, out) = doctor(&stand_in_env(&r.url, true, true), &[]).await;
    assert_eq!(code, 0, "the capture replays: {out}");
    assert!(out.contains("summary: 2 of 2 account(s) pass"), "{out}");
}
