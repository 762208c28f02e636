//! Compatibility with the official `anthropic` Python SDK, run against the real binary in demo
//! mode (which streams simulated reasoning, so thinking blocks must arrive). The SDK is installed
//! by `.ci/run` in a Python venv (`pip install anthropic`); without it the test says it skipped.

use std::process::Stdio;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test]
async fn anthropic_python_sdk_against_the_demo() {
    let Ok(python) = std::env::var("SDK_PYTHON") else {
        eprintln!(
            "skipped: SDK_PYTHON unset (point it at a python with the `anthropic` package; .ci/run does)"
        );
        return;
    };
    let port = free_port();
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"))
        .args(["demo", "--frame-delay-ms", "1"])
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("API_MASTER_KEY", "sk-sdk")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the demo");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "demo started");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/anthropic_compat.py");
    let out = tokio::process::Command::new(&python)
        .args([script, &base, "sk-sdk", "--expect-thinking"])
        .output()
        .await
        .expect("run python");
    let _ = demo.start_kill();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "anthropic SDK check failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}
