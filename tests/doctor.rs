//! `enginelabs-2api doctor` as a user runs it: the real binary, configured through the
//! environment like `serve`, against an in-process simulator. A good account of either door
//! passes every step with exit 0; each injected fault fails the step that names it (exit 1),
//! except unknown frame types, which are listed without failing. The output never holds the
//! account's secrets.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::proc::TempDir;
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator};
use serde_json::Value;

/// What one run of the doctor printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// The simulator's first account as a cookie account.
fn web_env(sim: &Simulator) -> Vec<(&'static str, String)> {
    vec![
        ("CLERK_COOKIE", sim.account().cookie),
        ("CLERK_BASE_URL", sim.url()),
        ("ENGINE_BASE_URL", sim.url()),
    ]
}

/// The simulator's first account as a `cto login` (no cookie account).
fn cli_env(sim: &Simulator) -> Vec<(&'static str, String)> {
    let login = sim.cli_login(&sim.account().user_id).unwrap();
    vec![
        ("CTO_REFRESH_TOKEN", login.refresh_token),
        ("CLERK_BASE_URL", sim.url()),
        ("ENGINE_BASE_URL", sim.url()),
    ]
}

/// Runs `doctor` with exactly `env` (plus a memory store unless `env` names one, no CLI
/// credentials file) in an empty directory, so no `.env` is read.
async fn doctor(env: &[(&str, String)], args: &[&str]) -> Run {
    let dir = TempDir::new("doctor");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"));
    cmd.arg("doctor")
        .args(args)
        .current_dir(&dir.0)
        .env_clear()
        .env("CTO_CREDENTIALS_FILE", "none")
        .env("REQUEST_TIMEOUT_SECS", "5")
        .env("STREAM_IDLE_TIMEOUT_SECS", "5")
        .kill_on_drop(true);
    if !env.iter().any(|(k, _)| *k == "STORE") {
        cmd.env("STORE", "memory");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("the doctor finished in time")
        .expect("run the doctor");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn sim() -> Simulator {
    Simulator::start(SimConfig::default()).await.unwrap()
}

/// Asserts a failed run whose first failure is `step`.
/// Each of `steps` passed.
fn assert_passed(run: &Run, steps: &[&str]) {
    for step in steps {
        assert!(
            run.stdout.contains(&format!("✓ {step}:")),
            "`{step}` did not pass:\n{}",
            run.all()
        );
    }
}

/// The report says `text`.
fn assert_says(run: &Run, text: &str) {
    assert!(
        run.stdout.contains(text),
        "missing `{text}`:\n{}",
        run.all()
    );
}

fn fails_at(run: &Run, step: &str) {
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains(&format!("✗ {step}:")),
        "no failed `{step}` line:\n{}",
        run.all()
    );
    assert!(
        run.stdout.contains(&format!("fails at `{step}`")),
        "the summary does not name `{step}`:\n{}",
        run.all()
    );
}

#[tokio::test]
async fn a_good_web_account_passes_every_step() {
    let sim = sim().await;
    let run = doctor(&web_env(&sim), &["--yes"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_passed(
        &run,
        &[
            "clerk session",
            "token mint",
            "protocol",
            "adapters",
            "billing",
            "test turn",
            "frames",
            "tool emulation",
            "cleanup",
            "cloudflare",
        ],
    );
    assert_says(&run, "summary: 1 of 1 account(s) pass");
    // Both test chats were deleted.
    assert_says(&run, "deleted the 2 test chat(s)");
}

#[tokio::test]
async fn a_good_cli_account_passes_and_its_rotated_token_is_stored() {
    let sim = sim().await;
    let data = TempDir::new("doctor-data");
    let mut env = cli_env(&sim);
    env.push(("STORE", "embedded".into()));
    env.push(("DATA_DIR", data.0.display().to_string()));
    let run = doctor(&env, &["--yes"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_passed(
        &run,
        &[
            "cli refresh",
            "cli models",
            "cli completion",
            "cli tool call",
            "cloudflare",
        ],
    );
    assert_says(&run, "rotated and the new one is stored");
    // The next start finds the rotated token: a second run refreshes again and passes.
    let again = doctor(&env, &["--yes"]).await;
    assert_eq!(again.code, 0, "{}", again.all());
}

#[tokio::test]
async fn a_memory_store_warns_that_the_rotated_token_is_not_kept() {
    let sim = sim().await;
    let run = doctor(&cli_env(&sim), &["--yes"]).await;
    assert_eq!(run.code, 0, "a warning does not fail: {}", run.all());
    assert_says(&run, "! cli refresh:");
    assert_says(&run, "STORE=memory");
}

#[tokio::test]
async fn a_revoked_session_fails_the_clerk_step() {
    let sim = sim().await;
    sim.revoke(&sim.account().user_id);
    let run = doctor(&web_env(&sim), &["--yes"]).await;
    fails_at(&run, "clerk session");
    assert_says(&run, "- test turn: not checked");
    assert_says(&run, "paste a fresh cookie");
}

#[tokio::test]
async fn a_bad_cookie_fails_the_clerk_step() {
    let sim = sim().await;
    let mut env = web_env(&sim);
    env[0].1 = "__client=this-is-not-a-clerk-client-value".into();
    let run = doctor(&env, &["--yes"]).await;
    fails_at(&run, "clerk session");
    assert!(
        !run.all().contains("this-is-not-a-clerk-client-value"),
        "{}",
        run.all()
    );
}

#[tokio::test]
async fn gen2_forced_where_only_gen1_answers_fails_the_protocol_step() {
    let sim = Simulator::start(SimConfig {
        gen2: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut env = web_env(&sim);
    env.push(("UPSTREAM_PROTOCOL", "gen2".into()));
    let run = doctor(&env, &["--yes"]).await;
    fails_at(&run, "protocol");
    assert_says(&run, "UPSTREAM_PROTOCOL=auto");
}

#[tokio::test]
async fn auto_on_a_gen1_upstream_passes_through_the_fallback() {
    let sim = Simulator::start(SimConfig {
        gen2: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let run = doctor(&web_env(&sim), &["--yes"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_says(&run, "`auto` falls back to gen1");
    assert_says(&run, "✓ test turn:");
}

#[tokio::test]
async fn unknown_frame_types_are_listed_not_failed() {
    let sim = sim().await;
    sim.set_faults(Faults {
        extra_frames: true,
        ..Faults::default()
    });
    let run = doctor(&web_env(&sim), &["--yes"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(" frames:"))
        .unwrap_or_default();
    assert!(line.starts_with("  ! frames:"), "{}", run.all());
    assert!(
        line.contains("unknown types: presence, update/tool_call"),
        "{line}"
    );
}

#[tokio::test]
async fn a_tool_format_the_model_ignores_fails_the_emulation_step() {
    let sim = sim().await;
    let run = doctor(
        &web_env(&sim),
        &["--yes", "--tool-prompt-extra", "[[tool-ignore]]"],
    )
    .await;
    fails_at(&run, "tool emulation");
    assert_says(&run, "✓ test turn:");
}

#[tokio::test]
async fn a_spent_refresh_token_fails_the_refresh_step() {
    let sim = sim().await;
    let env = cli_env(&sim);
    sim.set_faults(Faults {
        cli_refresh_refused: vec![sim.account().user_id],
        ..Faults::default()
    });
    let run = doctor(&env, &["--yes"]).await;
    fails_at(&run, "cli refresh");
    assert_says(&run, "cto login");
}

#[tokio::test]
async fn json_gives_the_same_report_without_secrets() {
    let sim = sim().await;
    let mut env = web_env(&sim);
    let login = sim.cli_login(&sim.account().user_id).unwrap();
    env.push(("CTO_REFRESH_TOKEN", login.refresh_token.clone()));
    let cookie = sim.account().cookie;
    let run = doctor(&env, &["--yes", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["passed"], true);
    let accounts = report["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[0]["kind"], "web");
    assert_eq!(accounts[1]["kind"], "cli");
    let checks: Vec<&str> = accounts[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["check"].as_str().unwrap())
        .collect();
    assert!(checks.contains(&"tool_emulation"), "{checks:?}");
    let client = cookie
        .split("__client=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let now = sim
        .cli_account(&sim.account().user_id)
        .unwrap()
        .refresh_token;
    for secret in [client, &login.refresh_token, &now] {
        assert!(
            !run.all().contains(secret),
            "a secret leaked:\n{}",
            run.all()
        );
    }
}

#[tokio::test]
async fn without_yes_and_without_a_terminal_it_asks_for_yes_and_runs_nothing() {
    let sim = sim().await;
    let run = doctor(&web_env(&sim), &[]).await;
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--yes"), "{}", run.all());
    assert!(run.stderr.contains("credits"), "{}", run.all());
    assert!(sim.stats().triggers.is_empty());
}

#[tokio::test]
async fn a_cloudflare_challenge_is_named_with_the_transport() {
    let sim = sim().await;
    sim.set_faults(Faults {
        cloudflare_challenge: true,
        ..Faults::default()
    });
    let run = doctor(&web_env(&sim), &["--yes"]).await;
    fails_at(&run, "clerk session");
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(" cloudflare:"))
        .unwrap_or_default();
    assert!(line.starts_with("  ✗ cloudflare:"), "{}", run.all());
    assert!(
        line.contains("transport plain") || line.contains("transport impersonate"),
        "{line}"
    );
    assert!(line.contains("at `clerk session`"), "{line}");
}

#[tokio::test]
async fn one_failing_account_among_good_ones_fails_the_run_and_is_named() {
    let sim = sim().await;
    let sick = sim.add_account();
    sim.revoke(&sick.user_id);
    let dir = TempDir::new("doctor-accounts");
    let file = dir.0.join("accounts.toml");
    std::fs::write(
        &file,
        format!(
            "[[account]]\nlabel = \"good\"\ncookie = \"{}\"\n\n[[account]]\nlabel = \"sick\"\ncookie = \"{}\"\n",
            sim.account().cookie,
            sick.cookie
        ),
    )
    .unwrap();
    let env = vec![
        ("ACCOUNTS_FILE", file.display().to_string()),
        ("CLERK_BASE_URL", sim.url()),
        ("ENGINE_BASE_URL", sim.url()),
    ];
    let run = doctor(&env, &["--yes"]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert_says(&run, "summary: 1 of 2 account(s) pass");
    assert_says(&run, "`sick` fails at `clerk session`");
    assert!(!run.stdout.contains("`good` fails"), "{}", run.all());
}

#[tokio::test]
async fn no_configured_account_fails_and_says_how_to_add_one() {
    let sim = sim().await;
    let env = vec![
        ("CLERK_BASE_URL", sim.url()),
        ("ENGINE_BASE_URL", sim.url()),
    ];
    let run = doctor(&env, &["--yes"]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert_says(&run, "no account is configured");
}
