//! Compatibility with the official `openai` Node SDK, run against the real binary in demo mode.
//! `.ci/run` installs the SDK with npm and points SDK_NODE_MODULES at it; without it the test
//! says it skipped.

use std::process::Stdio;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test]
async fn openai_node_sdk_against_the_demo() {
    let Ok(modules) = std::env::var("SDK_NODE_MODULES") else {
        eprintln!(
            "skipped: SDK_NODE_MODULES unset (a node_modules folder holding `openai`; .ci/run sets it)"
        );
        return;
    };
    let port = free_port();
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"))
        .args(["demo", "--frame-delay-ms", "1"])
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("API_MASTER_KEY", "sk-node")
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
    // ESM resolves packages from the script's folder upwards, so run a copy inside the
    // folder that holds node_modules.
    let dir = std::path::Path::new(&modules)
        .parent()
        .expect("node_modules has a parent")
        .to_path_buf();
    let script = dir.join("openai_compat.mjs");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_compat.mjs"),
        &script,
    )
    .expect("copy script");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .args([format!("{base}/v1"), "sk-node".to_string()])
        .output()
        .await
        .expect("run node");
    let _ = demo.start_kill();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openai Node SDK check failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}
