//! The real binary as a child process, for restarts, crashes and replicas.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use enginelabs_2api::simulator::Simulator;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The settings of a proxy in front of `sim` (its first account, the tests' API key) on a memory
/// store, with `extra` added (an `extra` setting replaces one of these).
pub fn sim_env(sim: &Simulator, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("API_MASTER_KEY", super::KEY.to_string()),
        ("CLERK_COOKIE", sim.account().cookie),
        ("CLERK_BASE_URL", sim.url()),
        ("ENGINE_BASE_URL", sim.url()),
        ("STORE", "memory".to_string()),
    ];
    for (k, v) in extra {
        env.retain(|(e, _)| e != k);
        env.push((k, v.clone()));
    }
    env
}

pub struct Proxy {
    pub child: tokio::process::Child,
    pub base: String,
    pub log: std::path::PathBuf,
}

/// Starts `enginelabs-2api serve` with exactly these environment variables (plus HOST/PORT),
/// logging to `log`, and waits until it answers.
pub async fn spawn_proxy(env: &[(&str, String)], log: &std::path::Path) -> Proxy {
    let port = free_port();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"));
    cmd.arg("serve")
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(file.try_clone().expect("clone")))
        .stderr(Stdio::from(file))
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn the binary");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            return Proxy {
                child,
                base,
                log: log.to_path_buf(),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the proxy did not start; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

impl Proxy {
    /// SIGTERM, then wait for a clean exit; returns whether it exited with status 0.
    pub async fn stop(mut self) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("el2a-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `enginelabs-2api demo` as a child process (simulator and proxy in one), ready to answer.
pub struct Demo {
    pub child: tokio::process::Child,
    pub base: String,
}

pub async fn spawn_demo(key: &str) -> Demo {
    spawn_demo_door(key, "web").await
}

/// The demo with its account on the given door (`web` or `cli`, see `demo --door`).
pub async fn spawn_demo_door(key: &str, door: &str) -> Demo {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"))
        .args(["demo", "--frame-delay-ms", "1", "--door", door])
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("API_MASTER_KEY", key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the demo");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            return Demo { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the demo did not start");
}

/// Runs a client program to its end; panics with its output when it fails.
pub async fn run_client(mut cmd: tokio::process::Command, what: &str) -> String {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    stdout
}
