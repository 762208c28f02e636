//! The CLI door's checks for one `cto login` account: the OAuth refresh (did the refresh token
//! rotate, and is the new one stored where `serve` will find it?), `GET /models`, a one-word
//! completion, and one that offers a trivial tool and expects a native `tool_calls` answer.
//! Each runs through the proxy's own [`crate::upstream::cli::CliClient`].
//!
//! The refresh matters most: the door's refresh tokens are single-use, so a refresh that is
//! not stored leaves the configured token spent for the next start.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::Context;
use super::answer::{Answer, excerpt, ms};
use super::emulation::{ARGUMENTS, TOOL};
use super::report::{AccountReport, Check};
use super::web::TURN_PROMPT;
use crate::pool::refresh::StoredRefresh;
use crate::upstream::cli::{CliAccount, RefreshStore, session_id};

/// Runs every CLI check for `account`, whose store key is `seed`.
pub async fn check(ctx: &Context, seed: &str, account: &Arc<CliAccount>, r: &mut AccountReport) {
    if refresh(ctx, seed, account, r).await {
        match models(ctx, account, r).await {
            Some(model) => {
                completion(ctx, account, &model, r).await;
                tool_call(ctx, account, &model, r).await;
            }
            None => r.not_checked(
                &[Check::CliCompletion, Check::CliToolCall],
                "no model to ask",
            ),
        }
    }
    r.cloudflare(crate::upstream::transport::Transport::NAME);
}

/// The refresh. Whether the rest can run.
async fn refresh(ctx: &Context, seed: &str, account: &CliAccount, r: &mut AccountReport) -> bool {
    let tokens = account.tokens();
    r.redactor.add(tokens.refresh_token().expose());
    let rotations = tokens.rotation_count();
    let refreshes = tokens.refresh_count();
    let access = ctx.cli.access_token(account).await;
    r.redactor.add(tokens.refresh_token().expose());
    let access = match access {
        Ok(a) => a,
        Err(e) => {
            r.fail_err(Check::CliRefresh, "a fresh access token", &e);
            r.not_checked(
                &[Check::CliModels, Check::CliCompletion, Check::CliToolCall],
                "needs an access token",
            );
            return false;
        }
    };
    r.redactor.add(&access);
    if tokens.refresh_count() == refreshes {
        r.pass(
            Check::CliRefresh,
            "the saved access token is still good: no refresh needed now",
        );
        return true;
    }
    if tokens.rotation_count() == rotations {
        r.pass(
            Check::CliRefresh,
            "refreshed; the refresh token did not rotate",
        );
        return true;
    }
    let stored = StoredRefresh::new(Arc::clone(&ctx.store), seed, account.label())
        .current()
        .await;
    let persisted = stored.is_some_and(|s| s == tokens.refresh_token());
    match (persisted, ctx.store_is_memory) {
        (true, false) => r.pass(
            Check::CliRefresh,
            format!(
                "refreshed; the refresh token rotated and the new one is stored ({})",
                ctx.store_label
            ),
        ),
        (true, true) => r.warn(
            Check::CliRefresh,
            "refreshed; the refresh token rotated, but STORE=memory keeps the new one only in this run: the configured token is spent now (use the embedded or Redis store)",
        ),
        (false, _) => r.fail(
            Check::CliRefresh,
            "the rotated refresh token stored for the next start",
            format!("the store ({}) does not hold it", ctx.store_label),
        ),
    }
    true
}

/// `GET /models`; returns the model to ask (the configured one when offered, else the first).
async fn models(ctx: &Context, account: &CliAccount, r: &mut AccountReport) -> Option<String> {
    match ctx.cli.models(account).await {
        Ok(list) if list.is_empty() => {
            r.fail(Check::CliModels, "at least one model", "an empty list");
            None
        }
        Ok(list) => {
            let detail = format!("{} model(s): {}", list.len(), list.join(", "));
            if list.contains(&ctx.model) {
                r.pass(Check::CliModels, detail);
                Some(ctx.model.clone())
            } else {
                let first = list[0].clone();
                r.pass(
                    Check::CliModels,
                    format!(
                        "{detail}; `{}` is not offered here, using `{first}`",
                        ctx.model
                    ),
                );
                Some(first)
            }
        }
        Err(e) => {
            r.fail_err(Check::CliModels, "the model list", &e);
            None
        }
    }
}

/// Starts one completion and reads it to its end (`None` after recording a failure).
async fn ask(
    ctx: &Context,
    account: &CliAccount,
    body: Value,
    check: Check,
    r: &mut AccountReport,
) -> Option<Answer> {
    let session = session_id(&format!("doctor-{}", uuid::Uuid::new_v4()));
    let started = Instant::now();
    match ctx.cli.start_turn(account, &session, body).await {
        Ok(turn) => {
            let answer = Answer::collect(turn, started).await;
            if let Some(e) = &answer.error {
                r.fail_err(check, "a complete answer", e);
                return None;
            }
            Some(answer)
        }
        Err(e) => {
            r.fail_err(check, "an answer", &e);
            None
        }
    }
}

async fn completion(ctx: &Context, account: &CliAccount, model: &str, r: &mut AccountReport) {
    let body = json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": TURN_PROMPT}],
    });
    let Some(a) = ask(ctx, account, body, Check::CliCompletion, r).await else {
        return;
    };
    if a.text.trim().is_empty() {
        r.fail(
            Check::CliCompletion,
            "an answer with text",
            "an empty answer",
        );
    } else {
        r.pass(
            Check::CliCompletion,
            format!(
                "model `{model}` answered \"{}\" in {} ms (first event after {} ms)",
                a.excerpt(),
                ms(a.took),
                a.first_event.map_or(0, ms)
            ),
        );
    }
}

async fn tool_call(ctx: &Context, account: &CliAccount, model: &str, r: &mut AccountReport) {
    let body = json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": format!(
            "Call the tool `{TOOL}` once with the arguments {ARGUMENTS}.\ncall {TOOL} {ARGUMENTS}"
        )}],
        "tools": [{"type": "function", "function": {
            "name": TOOL,
            "description": "Echoes its text back.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        }}],
        "tool_choice": "required",
    });
    let Some(a) = ask(ctx, account, body, Check::CliToolCall, r).await else {
        return;
    };
    if a.tool_calls.iter().any(|n| n == TOOL) {
        r.pass(
            Check::CliToolCall,
            format!("a native `tool_calls` answer called `{TOOL}`"),
        );
    } else {
        r.fail(
            Check::CliToolCall,
            format!("a native `tool_calls` answer calling `{TOOL}`").as_str(),
            format!(
                "calls {:?}, text \"{}\"",
                a.tool_calls,
                excerpt(&a.text, 60)
            ),
        );
    }
}
