//! What goes upstream about tools, in exactly the formats of `docs/tool-emulation.md`: the
//! `[Tools]` block, past calls and their results in a transcript, the reminder line of a
//! continued turn, the repair turn.
//!
//! Every piece is returned without a trailing newline, like the other sections of a prompt
//! (the conversation module joins sections with a blank line).

use serde_json::Value;

use super::{ToolCall, ToolChoice, ToolSet, compact};

/// The last line of a continued turn: the upstream chat already holds the tools block.
pub const REMINDER: &str =
    "(Reply in text, or call tools with a <<<TOOL_CALLS>>> block as described before.)";

const OPEN: &str = "<<<TOOL_CALLS>>>";
const CLOSE: &str = "<<<END_TOOL_CALLS>>>";

/// The `[Tools]` section, its tool definitions compacted step by step until the whole section
/// fits `budget` bytes (see `compact` for the steps). When it cannot fit, the smallest form is
/// returned: every tool is always there. Empty when no call is allowed (no tools, or
/// `tool_choice: none`): the contract sends no block then.
pub fn tools_block(set: &ToolSet, budget: usize) -> String {
    let Some(rules) = rules(set) else {
        return String::new();
    };
    let head = format!(
        "[Tools]\nYou can call tools. To call tools, end your reply with exactly one block in \
         this format:\n{OPEN}\n[{{\"name\": \"TOOL_NAME\", \"arguments\": {{...}}}}]\n{CLOSE}\n\
         {rules}\n<<<TOOLS>>>\n"
    );
    let tail = "<<<END_TOOLS>>>";
    let room = budget.saturating_sub(head.len() + tail.len());
    let mut out = head;
    for line in compact::tool_lines(set.specs(), room) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(tail);
    out
}

/// The rules paragraph: the `tool_choice` rule in the contract's words, the parallel rule,
/// and what a well-formed call looks like. `None` when no call is allowed.
fn rules(set: &ToolSet) -> Option<String> {
    if !set.calls_allowed() {
        return None;
    }
    let choice = match set.choice() {
        ToolChoice::Auto | ToolChoice::None => {
            "Call tools only when needed; otherwise answer in plain text.".to_string()
        }
        ToolChoice::Required => "You must call at least one tool in this reply.".to_string(),
        ToolChoice::Named(name) => format!("You must call the tool `{name}` in this reply."),
    };
    let parallel = if set.parallel() {
        "Several calls in one block run in parallel."
    } else {
        "Call at most one tool per reply."
    };
    Some(format!(
        "{choice} {parallel} `arguments` is a JSON object that follows the tool's `parameters` \
         schema. Write nothing after the block: the results come back in the next message as \
         [Tool result] sections. A block inside a code fence is not a call. The tools:"
    ))
}

/// Past calls of an assistant message, as the block the model would write (with the ids, so
/// results can refer to them). Arguments that are not JSON are kept as a string. Empty for no
/// calls.
pub fn render_calls(calls: &[ToolCall]) -> String {
    if calls.is_empty() {
        return String::new();
    }
    let items: Vec<String> = calls
        .iter()
        .map(|c| {
            let arguments = serde_json::from_str::<Value>(&c.arguments)
                .unwrap_or_else(|_| Value::from(c.arguments.as_str()));
            format!(
                r#"{{"id":{},"name":{},"arguments":{arguments}}}"#,
                Value::from(c.id.as_str()),
                Value::from(c.name.as_str()),
            )
        })
        .collect();
    format!("{OPEN}\n[{}]\n{CLOSE}", items.join(","))
}

/// One tool result as a labelled section: `[Tool result call_id=ID name=NAME error]` and the
/// content. The name is optional (Anthropic results carry only the id); `error` marks a failed
/// call. Ids and names are client text: blanks and `]` in them become `_` so the label stays
/// one parseable line.
pub fn render_result(call_id: &str, name: Option<&str>, is_error: bool, content: &str) -> String {
    let mut label = format!("[Tool result call_id={}", label_word(call_id));
    if let Some(name) = name {
        label.push_str(" name=");
        label.push_str(&label_word(name));
    }
    if is_error {
        label.push_str(" error");
    }
    label.push(']');
    let content = content.trim_end();
    if content.is_empty() {
        label
    } else {
        format!("{label}\n{content}")
    }
}

fn label_word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_whitespace() || c == ']' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The repair turn after a block that could not be used; `reason` is
/// [`Parsed::Malformed`](super::Parsed::Malformed)'s.
pub fn repair_prompt(reason: &str) -> String {
    let reason = reason.trim().trim_end_matches('.');
    format!(
        "[Tool call error]\nYour {OPEN} block could not be used: {reason}.\n\
         Reply with only the corrected block."
    )
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
