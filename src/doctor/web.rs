//! The web door's checks for one cookie account, in the order a turn needs them: the Clerk
//! session, a token mint, the protocol generation, the adapter list, billing, a one-word turn
//! (with its frames surveyed), and a turn that offers a tool in the emulated format. Each
//! check uses the proxy's own client ([`EngineClient`](crate::upstream::EngineClient), `upstream::clerk`), so what passes here is
//! what `serve` does.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::Context;
use super::answer::{Answer, excerpt, ms};
use super::frames::FrameSurvey;
use super::report::{AccountReport, Check};
use crate::upstream::engine::{Adapter, EngineCall};
use crate::upstream::{
    Account, HistoryRef, ProtocolChoice, TurnRequest, UpstreamError, clerk, jwt,
};

/// The prompt of the plain test turn.
pub const TURN_PROMPT: &str = "Reply with the word ok.";

/// Runs every web check for `account`.
pub async fn check(ctx: &Context, account: &Arc<Account>, r: &mut AccountReport) {
    redact_cookie(account, r);
    if session(ctx, account, r).await
        && let Some(model) = setup(ctx, account, r).await
    {
        let mut histories = Vec::new();
        turns(ctx, account, &model, r, &mut histories).await;
        cleanup(ctx, account, &histories, r).await;
    }
    r.cloudflare(crate::upstream::transport::Transport::NAME);
}

/// Adds the account's cookie as it stands now (Clerk rotates it) to the redacted secrets.
fn redact_cookie(account: &Account, r: &mut AccountReport) {
    r.redactor.add(&account.current_client_cookie());
}

/// Clerk `/v1/client` and a token mint. Whether the rest can run.
async fn session(ctx: &Context, account: &Account, r: &mut AccountReport) -> bool {
    let engine = &ctx.engine;
    let found = clerk::discover(engine.http(), engine.config(), account).await;
    redact_cookie(account, r);
    match found {
        Ok(id) => r.pass(
            Check::ClerkSession,
            format!(
                "session {}, user {}, org {}",
                id.session_id,
                id.user_id,
                id.org_id.as_deref().unwrap_or("none (personal account)")
            ),
        ),
        Err(e) => {
            r.fail_err(
                Check::ClerkSession,
                "a signed-in session behind the cookie",
                &e,
            );
            r.not_checked(&WEB_AFTER_SESSION, "needs a Clerk session");
            return false;
        }
    }
    let minted = clerk::jwt(engine.http(), engine.config(), account).await;
    redact_cookie(account, r);
    match minted {
        Ok(token) => {
            r.redactor.add(&token);
            let exp = jwt::decode_claims(&token).ok().and_then(|c| c.exp);
            match exp {
                Some(exp) => r.pass(
                    Check::TokenMint,
                    format!(
                        "token minted, expires in {} s",
                        exp.saturating_sub(unix_now())
                    ),
                ),
                None => r.warn(Check::TokenMint, "token minted, but it carries no expiry"),
            }
            true
        }
        Err(e) => {
            r.fail_err(Check::TokenMint, "a session token (JWT)", &e);
            r.not_checked(&WEB_AFTER_MINT, "needs a session token");
            false
        }
    }
}

const WEB_AFTER_SESSION: [Check; 8] = [
    Check::TokenMint,
    Check::Protocol,
    Check::Adapters,
    Check::Billing,
    Check::Turn,
    Check::Frames,
    Check::ToolEmulation,
    Check::Cleanup,
];
const WEB_AFTER_MINT: [Check; 7] = [
    Check::Protocol,
    Check::Adapters,
    Check::Billing,
    Check::Turn,
    Check::Frames,
    Check::ToolEmulation,
    Check::Cleanup,
];
const TURN_CHECKS: [Check; 4] = [
    Check::Turn,
    Check::Frames,
    Check::ToolEmulation,
    Check::Cleanup,
];

/// Protocol generation, adapters and billing. Returns the model to run the turns with, or
/// `None` when a turn cannot work (the rest is then marked not checked).
async fn setup(ctx: &Context, account: &Account, r: &mut AccountReport) -> Option<String> {
    let engine = &ctx.engine;
    let choice = engine.config().protocol;
    let adapters = engine.refresh_adapters(account).await;
    let mut model = Some(ctx.model.clone());
    match &adapters {
        Ok(list) => {
            let note = match choice {
                ProtocolChoice::Gen1 => "; UPSTREAM_PROTOCOL=gen1 is set, `auto` would pick gen2",
                _ => "",
            };
            r.pass(
                Check::Protocol,
                format!(
                    "Gen-2 answers (`{}`); `auto` picks gen2{note}",
                    EngineCall::Adapters.label()
                ),
            );
            model = Some(adapters_step(list, &ctx.model, r));
        }
        Err(e) if gen2_missing(e) => match choice {
            ProtocolChoice::Gen2 => {
                r.fail(
                    Check::Protocol,
                    "the Gen-2 setup calls (UPSTREAM_PROTOCOL=gen2)",
                    format!(
                        "`{}` answers 404: this account speaks Gen-1",
                        EngineCall::Adapters.label()
                    ),
                );
                r.not_checked(&[Check::Adapters], "Gen-1 has no adapter list");
                model = None;
            }
            _ => {
                r.pass(
                    Check::Protocol,
                    format!(
                        "Gen-1 (`{}` answers 404); `auto` falls back to gen1",
                        EngineCall::Adapters.label()
                    ),
                );
                r.not_checked(&[Check::Adapters], "Gen-1 has no adapter list");
            }
        },
        Err(e) => {
            r.fail_err(Check::Protocol, "an answer to the Gen-2 setup call", e);
            r.not_checked(&[Check::Adapters], "the protocol step failed");
            model = None;
        }
    }
    match engine.billing(account).await {
        Ok(body) => billing_step(&body, r),
        Err(e) => r.fail_err(Check::Billing, "the account's billing", &e),
    }
    if model.is_none() {
        r.not_checked(&TURN_CHECKS, "the protocol step failed");
    }
    model
}

/// Lists the models and tiers; returns the model the turns use (the configured default when
/// an adapter answers to it, else the first enabled one).
fn adapters_step(list: &[Adapter], wanted: &str, r: &mut AccountReport) -> String {
    let shown: Vec<String> = list
        .iter()
        .map(|a| {
            let tier = a
                .minimum_tier
                .map_or(String::new(), |t| format!(" tier {t}"));
            let off = if a.enabled == Some(false) { " off" } else { "" };
            format!("{}{tier}{off}", a.key)
        })
        .collect();
    let detail = format!("{} model(s): {}", list.len(), shown.join(", "));
    if list.iter().any(|a| a.answers_to(wanted)) {
        r.pass(Check::Adapters, detail);
        return wanted.to_string();
    }
    let first = list
        .iter()
        .find(|a| a.enabled != Some(false))
        .map(|a| a.key.clone());
    match first {
        Some(key) => {
            r.warn(
                Check::Adapters,
                format!("{detail}; none answers to `{wanted}` (MODEL), using `{key}`"),
            );
            key
        }
        None => {
            r.fail(Check::Adapters, "at least one enabled model", detail);
            wanted.to_string()
        }
    }
}

/// The scalar fields of the billing answer (credits, limits, concurrency), as they came.
fn billing_step(body: &Value, r: &mut AccountReport) {
    let fields: Vec<String> = body
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.is_number() || v.is_boolean() || v.is_string())
                .take(12)
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        })
        .unwrap_or_default();
    let detail = if fields.is_empty() {
        "answered (no scalar fields)".to_string()
    } else {
        fields.join(", ")
    };
    if body.get("hasReachedLimit").and_then(Value::as_bool) == Some(true) {
        r.warn(
            Check::Billing,
            format!("{detail}: the usage limit is reached"),
        );
    } else {
        r.pass(Check::Billing, detail);
    }
}

/// The plain turn (with its frames) and the tool-emulation turn.
async fn turns(
    ctx: &Context,
    account: &Arc<Account>,
    model: &str,
    r: &mut AccountReport,
    histories: &mut Vec<HistoryRef>,
) {
    ctx.take_frames();
    let started = Instant::now();
    let request = TurnRequest {
        model: model.to_string(),
        prompt: TURN_PROMPT.to_string(),
        continue_history: None,
        images: Vec::new(),
    };
    let answer = match ctx.engine.start_turn(account, request).await {
        Ok(turn) => {
            histories.push(turn.history.clone());
            Answer::collect(turn, started).await
        }
        Err(e) => {
            r.fail_err(Check::Turn, "the turn to start", &e);
            r.not_checked(&[Check::Frames], "no turn ran");
            ctx.take_frames();
            super::emulation::check(ctx, account, model, r, histories).await;
            return;
        }
    };
    let frames = ctx.take_frames();
    let first_frame = frames
        .first()
        .map(|f| f.at.saturating_duration_since(started));
    match (&answer.error, answer.finished) {
        (None, true) if !answer.text.trim().is_empty() => r.pass(
            Check::Turn,
            format!(
                "model `{model}` answered \"{}\" in {} ms (first frame after {} ms, first text after {} ms)",
                answer.excerpt(),
                ms(answer.took),
                first_frame.map_or(0, ms),
                answer.first_event.map_or(0, ms),
            ),
        ),
        (Some(e), _) => r.fail_err(Check::Turn, "a finished answer", e),
        _ => r.fail(
            Check::Turn,
            "a finished answer with text",
            format!(
                "{} (text: \"{}\")",
                if answer.finished { "an empty answer" } else { "the stream ended without its end-of-turn state" },
                excerpt(&answer.text, 40)
            ),
        ),
    }
    let survey = FrameSurvey::of(frames.iter().map(|f| f.text.as_str()));
    if frames.is_empty() {
        r.fail(Check::Frames, "frames on the WebSocket", "none arrived");
    } else if survey.has_unknown() {
        r.warn(
            Check::Frames,
            format!("{} frame(s); {}", frames.len(), survey.summary()),
        );
    } else {
        r.pass(
            Check::Frames,
            format!("{} frame(s); {}", frames.len(), survey.summary()),
        );
    }
    super::emulation::check(ctx, account, model, r, histories).await;
}

/// Deletes the chats the turns created.
async fn cleanup(
    ctx: &Context,
    account: &Account,
    histories: &[HistoryRef],
    r: &mut AccountReport,
) {
    if histories.is_empty() {
        r.pass(Check::Cleanup, "no chat was created");
        return;
    }
    let mut failed: Option<UpstreamError> = None;
    for h in histories {
        if let Err(e) = ctx.engine.delete_history(account, h).await {
            r.note(Check::Cleanup, &e);
            failed = Some(e);
        }
    }
    match failed {
        None => r.pass(
            Check::Cleanup,
            format!("deleted the {} test chat(s)", histories.len()),
        ),
        Some(e) => r.warn(
            Check::Cleanup,
            format!("could not delete every test chat ({e}); remove them in cto.new by hand"),
        ),
    }
}

/// Whether the Gen-2 adapter call says the Gen-2 API does not exist here.
fn gen2_missing(err: &UpstreamError) -> bool {
    matches!(
        err,
        UpstreamError::Status { call, status: 404 | 405, .. } if *call == EngineCall::Adapters.label()
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
