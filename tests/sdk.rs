//! Compatibility with real client SDKs, each run against the real binary in demo mode (which
//! streams simulated reasoning): the official `openai` Python and Node SDKs and the official
//! `anthropic` Python SDK. `.ci/run` installs them (a Python venv, an npm folder); without them a
//! test says it skipped.

mod common;

use common::proc::{run_client, spawn_demo};

const KEY: &str = "sk-sdk";

fn sdk_script(name: &str) -> String {
    format!("{}/tests/sdk/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn openai_python_sdk_against_the_demo() {
    let Ok(python) = std::env::var("SDK_PYTHON") else {
        eprintln!(
            "skipped: SDK_PYTHON unset (point it at a python with the `openai` package; .ci/run does)"
        );
        return;
    };
    let demo = spawn_demo(KEY).await;
    let mut cmd = tokio::process::Command::new(&python);
    cmd.args([
        sdk_script("openai_compat.py"),
        format!("{}/v1", demo.base),
        KEY.to_string(),
    ]);
    println!("{}", run_client(cmd, "the openai Python SDK check").await);
}

#[tokio::test]
async fn anthropic_python_sdk_against_the_demo() {
    let Ok(python) = std::env::var("SDK_PYTHON") else {
        eprintln!(
            "skipped: SDK_PYTHON unset (point it at a python with the `anthropic` package; .ci/run does)"
        );
        return;
    };
    let demo = spawn_demo(KEY).await;
    let mut cmd = tokio::process::Command::new(&python);
    cmd.args([
        sdk_script("anthropic_compat.py"),
        demo.base.clone(),
        KEY.to_string(),
        "--expect-thinking".into(),
    ]);
    println!(
        "{}",
        run_client(cmd, "the anthropic Python SDK check").await
    );
}

#[tokio::test]
async fn openai_node_sdk_against_the_demo() {
    let Ok(modules) = std::env::var("SDK_NODE_MODULES") else {
        eprintln!(
            "skipped: SDK_NODE_MODULES unset (a node_modules folder holding `openai`; .ci/run sets it)"
        );
        return;
    };
    let demo = spawn_demo(KEY).await;
    // ESM resolves packages from the script's folder upwards: run a copy beside node_modules.
    let dir = std::path::Path::new(&modules)
        .parent()
        .expect("node_modules has a parent")
        .to_path_buf();
    let script = dir.join("openai_compat.mjs");
    std::fs::copy(sdk_script("openai_compat.mjs"), &script).expect("copy the script");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(&script)
        .args([format!("{}/v1", demo.base), KEY.to_string()]);
    println!("{}", run_client(cmd, "the openai Node SDK check").await);
}
