//! `enginelabs-2api doctor`: checks every configured account step by step, through the
//! proxy's own clients and with the configuration `serve` reads, and says what to do about
//! each failure. One line per step (✓ / ✗ / ! / -), then a summary; `--json` gives the same
//! report as JSON. The exit code is 0 only when every account passes. `--capture FILE` also
//! writes a redacted capture of every call ([`crate::capture`]), which `simulate --replay`
//! serves as the upstream.
//!
//! # Layout
//! - [`report`]: the steps, their outcomes and advice, the text and JSON forms, redaction;
//! - [`web`]: the web door (Clerk session, token, protocol, adapters, billing, a turn);
//! - [`emulation`]: the web door's tool-emulation turn;
//! - [`frames`]: the survey of a turn's WebSocket frames (types seen, unknown ones);
//! - [`cli_door`]: the CLI door (refresh and rotation, models, a completion, a tool call);
//! - [`answer`]: a test turn read to its end.
//!
//! The turns cost credits, so the doctor says so and asks first (`--yes` skips the question).
//! Accounts are loaded as the pool loads them, from the same store, so a CLI refresh token
//! that rotates here is stored where `serve` will find it.

pub mod answer;
pub mod cli_door;
pub mod emulation;
pub mod frames;
pub mod report;
pub mod web;

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use crate::capture::Recorder;
use crate::config::{Config, StoreChoice};
use crate::pool::Pool;
use crate::pool::login::{Kind, Login};
use crate::store::{Store, StoreLimits, open_store};
use crate::upstream::EngineClient;
use crate::upstream::cli::{CliClient, CliConfig};
use crate::upstream::tap::{FrameTap, TappedFrame};
use crate::upstream::transport::Transport;
use report::{AccountReport, Check, Report};

/// A boxed error with a readable message: enough for a command's top level.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// `doctor`'s own flags (the account and upstream settings are `serve`'s).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DoctorArgs {
    /// Print the report as JSON instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Do not ask before running the test turns (they cost credits).
    #[arg(long)]
    pub yes: bool,
    /// The model of the test turns (default: the configured default model, else the first
    /// one the account offers).
    #[arg(long)]
    pub model: Option<String>,
    /// Also write a redacted capture of every call to this file (replay it with
    /// `simulate --replay FILE`; attach it to a bug report).
    #[arg(long, value_name = "FILE")]
    pub capture: Option<std::path::PathBuf>,
    /// Appended to the request of the tool-emulation turn (tests use simulator directives).
    #[arg(long, hide = true)]
    pub tool_prompt_extra: Option<String>,
}

/// What every check needs.
pub struct Context {
    pub engine: EngineClient,
    /// Copies of the web turns' frames.
    pub tap: FrameTap,
    pub cli: CliClient,
    pub store: Arc<dyn Store>,
    pub store_label: String,
    pub store_is_memory: bool,
    /// The model asked for first.
    pub model: String,
    pub prompt_budget: usize,
    pub tool_prompt_extra: Option<String>,
    /// Set with `--capture`: records every call.
    pub recorder: Option<Recorder>,
}

impl Context {
    /// The frames tapped since the last call (handed to the recorder too).
    pub fn take_frames(&self) -> Vec<TappedFrame> {
        let frames = self.tap.take();
        if let Some(r) = &self.recorder {
            r.frames(frames.iter().map(|f| (f.at, f.text.as_str())));
        }
        frames
    }
}

/// Web turns per account (the plain turn and the tool turn); the CLI door runs two as well.
const TURNS_PER_ACCOUNT: usize = 2;

/// Runs the doctor; `Ok(true)` when every account passed.
pub async fn run(config: Config, args: DoctorArgs) -> Result<bool> {
    let turns = config.accounts.len() * TURNS_PER_ACCOUNT;
    if !config.accounts.is_empty() && !args.yes && !confirm(turns)? {
        return Err("stopped before any turn ran".into());
    }
    let limits = StoreLimits {
        conversation_ttl: config.conversation_ttl,
        max_conversations: config.max_conversations,
    };
    let store = open_store(config.store_kind(), limits).await.map_err(|e| {
        format!(
            "cannot open the store ({e}); a running proxy may hold the embedded store: stop it, or run the doctor with the same Redis store"
        )
    })?;
    let tap = FrameTap::new();
    let recorder = args.capture.as_ref().map(|_| Recorder::new());
    let mut engine = EngineClient::new(config.upstream.clone())
        .map_err(|e| e.to_string())?
        .with_frame_tap(tap.clone());
    let mut cli_http = Transport::new(&config.upstream).map_err(|e| e.to_string())?;
    if let Some(r) = &recorder {
        engine = engine.with_recorder(r.clone());
        cli_http.set_recorder(r.clone());
    }
    let ctx = Context {
        engine,
        tap,
        cli: CliClient::with_transport(CliConfig::from_upstream(&config.upstream), cli_http),
        recorder,
        store: Arc::clone(&store),
        store_label: config.store_label(),
        store_is_memory: config.store == StoreChoice::Memory,
        model: args
            .model
            .clone()
            .unwrap_or_else(|| config.catalog.default_model.clone()),
        prompt_budget: config.prompts.budget,
        tool_prompt_extra: args.tool_prompt_extra.clone(),
    };
    let pool = Pool::new(config.pool.clone());
    let mut accounts = Vec::new();
    for source in &config.accounts {
        let mut r = AccountReport::new(&source.label, source.kind);
        r.redactor.add(source.secret.expose());
        for part in source.secret.expose().split([';', '"', ' ', '\n']) {
            r.redactor
                .add(part.split_once('=').map_or(part, |(_, v)| v));
        }
        let before = pool.len();
        match pool
            .load_configured(std::slice::from_ref(source), &store)
            .await
        {
            Err((_, e)) => {
                let check = match source.kind {
                    Kind::Web => Check::ClerkSession,
                    Kind::Cli => Check::CliRefresh,
                };
                r.fail_err(check, "credentials the proxy can read", &e);
            }
            Ok(()) if pool.len() == before => r.not_checked(
                &[Check::ClerkSession],
                "the same account is configured twice",
            ),
            Ok(()) => match pool.logins().pop() {
                Some((_, Login::Web(account))) => web::check(&ctx, &account, &mut r).await,
                Some((seed, Login::Cli(account))) => {
                    cli_door::check(&ctx, &seed, &account, &mut r).await;
                }
                None => {}
            },
        }
        accounts.push(r);
    }
    if let (Some(path), Some(r)) = (&args.capture, &ctx.recorder) {
        let mut secrets: Vec<String> = config
            .accounts
            .iter()
            .map(|s| s.secret.expose().to_string())
            .collect();
        for a in &accounts {
            secrets.extend(a.redactor.secrets().iter().cloned());
        }
        let capture = crate::capture::redact::redact(&r.capture(), &secrets);
        let text = serde_json::to_string_pretty(&capture).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write the capture to {}: {e}", path.display()))?;
    }
    let report = Report::new(Transport::NAME, accounts);
    let out = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n"
    } else {
        report.text()
    };
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(report.passed)
}

/// Says what the run costs and asks to go on; without a terminal to ask, wants `--yes`.
fn confirm(turns: usize) -> Result<bool> {
    let note = format!(
        "doctor runs up to {turns} short test turn(s) on your account(s); each costs cto.new credits, and it deletes the chats it creates when it can."
    );
    if !std::io::stdin().is_terminal() {
        return Err(format!("{note} Pass --yes to run them without this question.").into());
    }
    eprint!("{note} Go on? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}
