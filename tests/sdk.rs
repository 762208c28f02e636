//! Compatibility with real client SDKs, each run against the real binary in demo mode (which
//! streams simulated reasoning): the official `openai` Python and Node SDKs and the official
//! `anthropic` Python SDK, plain chat, tool calls and the Responses API.
//!
//! They need the SDKs, which `.ci/run` installs (a Python venv, an npm folder) and points to with
//! `SDK_PYTHON` / `SDK_NODE_MODULES`; so they are `#[ignore]`d on a laptop (`cargo test` lists
//! them as ignored) and `.ci/run` runs them with `--include-ignored`. Run without the variable
//! they fail, saying what is missing.

mod common;

use common::proc::{run_client, spawn_demo_door};

const KEY: &str = "sk-sdk";

fn sdk_script(name: &str) -> String {
    format!("{}/tests/sdk/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn need(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is unset: point it at {what} (.ci/run installs it and sets it)")
    })
}

/// Runs `script` with the SDK's Python against a fresh demo whose account uses `door` (`web`
/// or `cli`); `v1` appends `/v1` to the base.
async fn python(script: &str, door: &str, v1: bool, extra: &[&str], what: &str) {
    let python = need(
        "SDK_PYTHON",
        "a python with the `openai` and `anthropic` packages",
    );
    let demo = spawn_demo_door(KEY, door).await;
    let base = if v1 {
        format!("{}/v1", demo.base)
    } else {
        demo.base.clone()
    };
    let mut cmd = tokio::process::Command::new(&python);
    cmd.args([sdk_script(script), base, KEY.to_string()]);
    cmd.args(extra);
    println!("{}", run_client(cmd, what).await);
}

#[tokio::test]
#[ignore = "needs SDK_PYTHON (a python with the openai package; .ci/run installs it)"]
async fn openai_python_sdk_against_the_demo() {
    python(
        "openai_compat.py",
        "web",
        true,
        &[],
        "the openai Python SDK check",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs SDK_PYTHON (a python with the openai package; .ci/run installs it)"]
async fn openai_python_sdk_tools_and_responses() {
    python(
        "openai_tools.py",
        "web",
        true,
        &["GPT5"],
        "the openai Python SDK tools check",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs SDK_PYTHON (a python with the openai package; .ci/run installs it)"]
async fn openai_python_sdk_tools_and_responses_through_the_cli_door() {
    python(
        "openai_tools.py",
        "cli",
        true,
        &["gpt-5.4"],
        "the openai Python SDK tools check (CLI door)",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs SDK_PYTHON (a python with the anthropic package; .ci/run installs it)"]
async fn anthropic_python_sdk_against_the_demo() {
    python(
        "anthropic_compat.py",
        "web",
        false,
        &["--expect-thinking"],
        "the anthropic Python SDK check",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs SDK_PYTHON (a python with the anthropic package; .ci/run installs it)"]
async fn anthropic_python_sdk_tool_use() {
    python(
        "anthropic_tools.py",
        "web",
        false,
        &[],
        "the anthropic Python SDK tool_use check",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs SDK_PYTHON (a python with the anthropic package; .ci/run installs it)"]
async fn anthropic_python_sdk_tool_use_through_the_cli_door() {
    python(
        "anthropic_tools.py",
        "cli",
        false,
        &[],
        "the anthropic Python SDK tool_use check (CLI door)",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs SDK_NODE_MODULES (a node_modules folder holding openai; .ci/run installs it)"]
async fn openai_node_sdk_against_the_demo() {
    let modules = need("SDK_NODE_MODULES", "a node_modules folder holding `openai`");
    let demo = spawn_demo_door(KEY, "web").await;
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
