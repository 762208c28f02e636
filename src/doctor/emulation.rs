//! The web door's tool-emulation check: one new chat whose prompt offers a trivial tool in the
//! `[Tools]` block of `docs/tool-emulation.md` (built by the same code as a client's request)
//! and asks the agent to call it; the answer goes through the same [`CallParser`]. The check
//! passes when the parser finds the call: then tool calls through this account work.
//!
//! The request ends with a `call echo {...}` line, which the simulator's model reads as "call
//! this tool" (a real model reads it as one more hint).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::Context;
use super::answer::{Answer, excerpt};
use super::report::{AccountReport, Check};
use crate::conversation::message::{Message, Role};
use crate::conversation::prompt::for_new_history;
use crate::tools::{CallParser, Parsed, ToolChoice, ToolSet, ToolSpec};
use crate::upstream::{Account, HistoryRef, TurnRequest};

/// The tool offered.
pub const TOOL: &str = "echo";
/// The arguments asked for.
pub const ARGUMENTS: &str = r#"{"text":"ok"}"#;

/// The tool set of the check: one tool, which must be called.
fn tool_set() -> ToolSet {
    ToolSet::new(
        vec![ToolSpec {
            name: TOOL.to_string(),
            description: "Echoes its text back.".to_string(),
            parameters: json!({
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"]
            }),
        }],
        ToolChoice::Named(TOOL.to_string()),
        false,
    )
}

/// The prompt: the tools block and a user message asking for the call (`extra` is appended to
/// the message: a hidden test hook).
pub fn prompt(extra: Option<&str>, budget: usize) -> String {
    let mut text = format!(
        "Call the tool `{TOOL}` once with the arguments {ARGUMENTS}. Do nothing else.\ncall {TOOL} {ARGUMENTS}"
    );
    if let Some(extra) = extra {
        text.push('\n');
        text.push_str(extra);
    }
    for_new_history(&[Message::new(Role::User, text)], Some(&tool_set()), budget).prompt
}

/// Runs the check and records the chat it created.
pub async fn check(
    ctx: &Context,
    account: &Arc<Account>,
    model: &str,
    r: &mut AccountReport,
    histories: &mut Vec<HistoryRef>,
) {
    let request = TurnRequest {
        model: model.to_string(),
        prompt: prompt(ctx.tool_prompt_extra.as_deref(), ctx.prompt_budget),
        continue_history: None,
        images: Vec::new(),
    };
    let started = Instant::now();
    let answer = match ctx.engine.start_turn(account, request).await {
        Ok(turn) => {
            histories.push(turn.history.clone());
            Answer::collect(turn, started).await
        }
        Err(e) => {
            ctx.take_frames();
            r.fail_err(Check::ToolEmulation, "the tool turn to start", &e);
            return;
        }
    };
    ctx.take_frames();
    if let Some(e) = &answer.error {
        r.fail_err(Check::ToolEmulation, "a finished answer", e);
        return;
    }
    let mut parser = CallParser::new(Arc::new(tool_set()));
    let mut parsed = parser.push(&answer.text);
    parsed.extend(parser.finish());
    let verdict = parsed.into_iter().find_map(|p| match p {
        Parsed::Text(_) => None,
        other => Some(other),
    });
    match verdict {
        Some(Parsed::Calls(calls)) if calls.iter().any(|c| c.name == TOOL) => {
            let args = calls
                .iter()
                .find(|c| c.name == TOOL)
                .map(|c| c.arguments.clone())
                .unwrap_or_default();
            r.pass(
                Check::ToolEmulation,
                format!("the agent called `{TOOL}` in the emulated format (arguments {args})"),
            );
        }
        Some(Parsed::Malformed { reason, .. }) => r.fail(
            Check::ToolEmulation,
            format!("a <<<TOOL_CALLS>>> block calling `{TOOL}`").as_str(),
            format!("a block the parser cannot use: {reason}"),
        ),
        _ => r.fail(
            Check::ToolEmulation,
            format!("a <<<TOOL_CALLS>>> block calling `{TOOL}`").as_str(),
            format!("plain text: \"{}\"", excerpt(&answer.text, 60)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_offers_the_tool_and_asks_for_it() {
        let p = prompt(Some("[[tool-ignore]]"), 20_000);
        assert!(p.contains("[Tools]"), "{p}");
        assert!(p.contains("<<<TOOLS>>>"), "{p}");
        assert!(p.contains("\"echo\""), "{p}");
        assert!(
            p.contains("call echo {\"text\":\"ok\"}\n[[tool-ignore]]"),
            "{p}"
        );
    }
}
