//! Acceptance of real coding-agent CLIs: Claude Code (Anthropic Messages), Codex CLI (OpenAI
//! Responses) and opencode (OpenAI Chat Completions through `@ai-sdk/openai-compatible`), each
//! run non-interactively against `enginelabs-2api demo` and asked to create a file with its own
//! file-writing tool. The prompt carries a line `call <tool> <json>`, which the simulator's model
//! turns into exactly that tool call when the tool is offered (docs/tool-emulation.md); the
//! client runs the tool and sends its result back, and the model answers
//! `The tool returned: <result>`. So a pass means the whole round went through the proxy: the
//! client's request shape, the tools block, the parsed call in the client's own wire format,
//! the tool result on the next request, and a stream the client accepts as a finished turn.
//!
//! The clients are pinned in `tests/agents/package.json`; `.ci/run` installs them into
//! `target/agents/` and sets `AGENT_BIN_DIR`. Without it these tests are ignored (`cargo test`
//! lists them as such); `cargo test --test agents -- --include-ignored` runs them, and they fail
//! loudly if the clients are missing. `AGENTS_BASE_URL=http://127.0.0.1:PORT` points the
//! clients at another server instead of the demo (a capture server, to see what they send).
//! Each client's configuration (and why each switch is there) is in its test.

mod common;
#[path = "agents/harness.rs"]
mod harness;

use harness::{DemoProxy, Door, KEY, Workspace, agent_bin, assert_file, report, run_client};
use serde_json::json;

/// The base URL the clients talk to (without `/v1`): the demo, unless `AGENTS_BASE_URL` is set.
fn base_url(proxy: &DemoProxy) -> String {
    std::env::var("AGENTS_BASE_URL").unwrap_or_else(|_| proxy.base.clone())
}

/// `claude -p` with the key in `ANTHROPIC_AUTH_TOKEN` (sent as `Authorization: Bearer`;
/// `ANTHROPIC_API_KEY` would send `x-api-key`). It posts to `/v1/messages?beta=true` only: 49 KB
/// on the first request (31 KB of tools, 7 KB of `system`, and a 9 KB `system`-role turn inside
/// `messages`, after the user's). Its file tool is `Write` (`{"file_path", "content"}`).
#[tokio::test]
#[ignore = "needs the agent CLIs: set AGENT_BIN_DIR (.ci/run installs them)"]
async fn claude_code_writes_a_file_through_the_web_door() {
    claude_code(Door::Web).await;
}

#[tokio::test]
#[ignore = "needs the agent CLIs: set AGENT_BIN_DIR (.ci/run installs them)"]
async fn claude_code_writes_a_file_through_the_cli_door() {
    claude_code(Door::Cli).await;
}

async fn claude_code(door: Door) {
    let claude = agent_bin("claude");
    let ws = Workspace::new(&format!("agent-claude-{}", door.arg()));
    let proxy = DemoProxy::start(&ws, door).await;
    let file = ws.work.join("hello.txt");
    let call = json!({"file_path": file, "content": "hi"});
    let prompt = format!("Create the file hello.txt.\ncall Write {call}");

    let mut cmd = ws.command(&claude);
    cmd.args(["-p", &prompt])
        // Root (CI) may not use --dangerously-skip-permissions; allowing the one tool is enough.
        .args(["--allowedTools", "Write"])
        // A proxy that keeps answering with tool calls ends the run here, not at the timeout.
        .args(["--max-turns", "4"])
        .env("ANTHROPIC_BASE_URL", base_url(&proxy))
        .env("ANTHROPIC_AUTH_TOKEN", KEY)
        // A Claude name, as Claude Code users set it: the proxy maps it to the closest model.
        .env("ANTHROPIC_MODEL", "claude-sonnet-4-5")
        // No update checks, telemetry, error reports or feature-flag fetches: with these the
        // only connections are to the base URL (checked with strace while writing this test).
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1");
    let run = run_client("claude", cmd, None, &ws).await;

    assert!(
        run.succeeded(),
        "{}",
        report("claude -p did not exit 0", &run, &proxy, &ws)
    );
    assert_file(&file, "hi", &run, &proxy, &ws);
    assert!(
        run.stdout.contains("The tool returned:"),
        "{}",
        report(
            "the final answer does not quote the tool result (`The tool returned: ...`)",
            &run,
            &proxy,
            &ws
        )
    );
}

/// `codex exec` with a custom provider speaking the Responses API. Codex sends its system prompt
/// as `developer` input items (no `instructions`), `store: false` and the whole history on every
/// request (no `previous_response_id`), and needs `response.output_item.done` for each item and
/// `response.completed` to end a turn. Its shell tool is `exec_command` (`{"cmd": "..."}`) for a
/// model it has no metadata for, which is every model name the proxy serves.
#[tokio::test]
#[ignore = "needs the agent CLIs: set AGENT_BIN_DIR (.ci/run installs them)"]
async fn codex_runs_a_shell_command_through_the_web_door() {
    codex(Door::Web).await;
}

#[tokio::test]
#[ignore = "needs the agent CLIs: set AGENT_BIN_DIR (.ci/run installs them)"]
async fn codex_runs_a_shell_command_through_the_cli_door() {
    codex(Door::Cli).await;
}

async fn codex(door: Door) {
    let codex = agent_bin("codex");
    let ws = Workspace::new(&format!("agent-codex-{}", door.arg()));
    let proxy = DemoProxy::start(&ws, door).await;
    let codex_home = ws.home.join(".codex");
    // plugins/apps/remote_plugin off: else it syncs a plugin catalogue from GitHub and ChatGPT
    // at start-up. web_search off: a hosted tool no proxy can run.
    ws.write(
        &codex_home.join("config.toml"),
        &format!(
            r#"model = "{model}"
model_provider = "el2a"
check_for_update_on_startup = false
web_search = "disabled"

[model_providers.el2a]
name = "enginelabs-2api"
base_url = "{base}/v1"
env_key = "EL2A_API_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false

[features]
plugins = false
apps = false
remote_plugin = false
"#,
            base = base_url(&proxy),
            model = door.gpt_model(),
        ),
    );
    let file = ws.work.join("hello.txt");
    let call = json!({"cmd": format!("printf hi > '{}'", file.display())});
    let prompt = format!("Create the file hello.txt.\ncall exec_command {call}");

    let mut cmd = ws.command(&codex);
    cmd.args(["exec", "--skip-git-repo-check"])
        .arg("--dangerously-bypass-approvals-and-sandbox")
        .arg("--ephemeral")
        .arg("-C")
        .arg(&ws.work)
        .arg(&prompt)
        .env("CODEX_HOME", &codex_home)
        .env("EL2A_API_KEY", KEY);
    let run = run_client("codex", cmd, None, &ws).await;

    assert!(
        run.succeeded(),
        "{}",
        report("codex exec did not exit 0", &run, &proxy, &ws)
    );
    assert_file(&file, "hi", &run, &proxy, &ws);
}

/// `opencode run` with a provider on the bundled `@ai-sdk/openai-compatible` (nothing is
/// installed at run time for it). Its file tool is `write` (`{"filePath", "content"}`).
#[tokio::test]
#[ignore = "needs the agent CLIs: set AGENT_BIN_DIR (.ci/run installs them)"]
async fn opencode_writes_a_file_through_the_web_door() {
    opencode(Door::Web).await;
}

#[tokio::test]
#[ignore = "needs the agent CLIs: set AGENT_BIN_DIR (.ci/run installs them)"]
async fn opencode_writes_a_file_through_the_cli_door() {
    opencode(Door::Cli).await;
}

async fn opencode(door: Door) {
    let opencode = agent_bin("opencode");
    let ws = Workspace::new(&format!("agent-opencode-{}", door.arg()));
    let proxy = DemoProxy::start(&ws, door).await;
    let model = door.opencode_model();
    let config = json!({
        "autoupdate": false,
        "share": "disabled",
        "permission": {"edit": "allow", "bash": "allow"},
        "provider": {
            "el2a": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "enginelabs-2api",
                "options": {"baseURL": format!("{}/v1", base_url(&proxy)), "apiKey": KEY},
                "models": {model: {"name": model}}
            }
        }
    });
    ws.write(&ws.work.join("opencode.json"), &config.to_string());
    // At start opencode installs `@opencode-ai/plugin` into its config folder in the background
    // from the npm registry, unless that folder has node_modules and a lock naming it already.
    let config_dir = ws.home.join(".config/opencode");
    std::fs::create_dir_all(config_dir.join("node_modules")).expect("config folder");
    ws.write(
        &config_dir.join("package.json"),
        r#"{"dependencies":{"@opencode-ai/plugin":"*"}}"#,
    );
    ws.write(
        &config_dir.join("package-lock.json"),
        r#"{"lockfileVersion":3,"packages":{"":{"dependencies":{"@opencode-ai/plugin":"*"}}}}"#,
    );
    let file = ws.work.join("hello.txt");
    let call = json!({"filePath": file, "content": "hi"});
    // On stdin: `opencode run` wraps a command-line message that holds a space in double quotes
    // (and escapes its quotes), which would break the `call` line.
    let prompt = format!("Create the file hello.txt.\ncall write {call}\n");

    let mut cmd = ws.command(&opencode);
    cmd.args(["run", "-m", &format!("el2a/{model}"), "--print-logs"])
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        // No model catalogue download; the provider's `models` is the whole list.
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env("OPENCODE_DISABLE_DEFAULT_PLUGINS", "1")
        .env("OPENCODE_DISABLE_LSP_DOWNLOAD", "1")
        .env("OPENCODE_DISABLE_SHARE", "1");
    let run = run_client("opencode", cmd, Some(&prompt), &ws).await;

    assert!(
        run.succeeded(),
        "{}",
        report("opencode run did not exit 0", &run, &proxy, &ws)
    );
    assert_file(&file, "hi", &run, &proxy, &ws);
}
