//! The text sent upstream for a turn (the web door: one prompt string per turn).
//!
//! A new history gets the whole transcript (system prompt first, then the tools block when tools
//! are offered, then every message labelled with its role) so the upstream sees the context the
//! client has; a continued history gets only the messages after the last assistant reply, because
//! the upstream already remembers the rest. Tool calls and results are written in the format of
//! `docs/tool-emulation.md`.
//!
//! cto.new refuses prompts over about 20 KB. A transcript over the budget becomes a [`Plan`]:
//! numbered context turns (each answered upstream and discarded) followed by the real turn,
//! which keeps the tools block (compacted to at most half the budget) and as much of the newest
//! messages as fits. Every byte of the transcript is sent exactly once, in order.

use super::message::{Message, Role};
use crate::tools::ToolSet;
use crate::tools::prompt as tool_prompt;

/// The prompts of one turn: context parts first (in order), then the real prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub context: Vec<String>,
    pub prompt: String,
}

impl Plan {
    fn single(prompt: String) -> Plan {
        Plan {
            context: Vec::new(),
            prompt,
        }
    }

    /// Bytes of every prompt of the plan.
    pub fn total_bytes(&self) -> usize {
        self.context.iter().map(String::len).sum::<usize>() + self.prompt.len()
    }
}

/// The wrapper text a context part adds around its share of the transcript.
const CONTEXT_FOOTER: &str = "\n\n(Context only: reply with the single word OK.)";
/// Room kept for a context part's header (`[Context part NN of NN]\n`).
const CONTEXT_HEADER_ROOM: usize = 40;

/// Prompts for a brand-new upstream history.
pub fn for_new_history(messages: &[Message], tools: Option<&ToolSet>, budget: usize) -> Plan {
    // A lone user message needs no labels: send it as the user typed it.
    if let ([only], None) = (messages, tools)
        && only.role == Role::User
        && only.text.len() <= budget
    {
        return Plan::single(only.text.clone());
    }
    let mut head: Vec<String> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(render)
        .collect();
    let rest: Vec<String> = messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(render)
        .collect();
    let Some(tools) = tools else {
        head.extend(rest);
        return fit(head, None, budget);
    };
    let full_block = tool_prompt::tools_block(tools, usize::MAX);
    let all: usize =
        head.iter().chain(&rest).map(|s| s.len() + 2).sum::<usize>() + full_block.len();
    if all <= budget {
        head.push(full_block);
        head.extend(rest);
        return Plan::single(head.join("\n\n"));
    }
    // Over the budget: the tools block goes with the real turn, compacted to leave room for
    // the newest messages.
    head.extend(rest);
    fit(
        head,
        Some(tool_prompt::tools_block(tools, budget / 2)),
        budget,
    )
}

/// Prompts for a continued history: only the new messages (and, with tools, the reminder of
/// the call format, since the tools block is already in the upstream history).
pub fn for_continued(new_messages: &[Message], tools: Option<&ToolSet>, budget: usize) -> Plan {
    if let ([only], None) = (new_messages, tools)
        && only.role == Role::User
        && only.text.len() <= budget
    {
        return Plan::single(only.text.clone());
    }
    let mut sections: Vec<String> = new_messages.iter().map(render).collect();
    if tools.is_some() {
        sections.push(tool_prompt::REMINDER.to_string());
    }
    fit(sections, None, budget)
}

/// One prompt when everything fits; else context parts and a real turn made of `lead` (the
/// tools block) and the newest sections that fit.
fn fit(sections: Vec<String>, lead: Option<String>, budget: usize) -> Plan {
    let joined_len: usize = sections.iter().map(|s| s.len() + 2).sum::<usize>()
        + lead.as_ref().map_or(0, |l| l.len() + 2);
    if joined_len <= budget + 2 {
        let mut all: Vec<String> = lead.into_iter().collect();
        all.extend(sections);
        return Plan::single(all.join("\n\n"));
    }
    let lead_len = lead.as_ref().map_or(0, |l| l.len() + 2);
    // The real turn: the newest whole sections that fit beside the lead.
    let room = budget.saturating_sub(lead_len);
    let mut tail_start = sections.len();
    let mut used = 0;
    while tail_start > 0 {
        let len = sections[tail_start - 1].len() + 2;
        if used + len > room {
            break;
        }
        used += len;
        tail_start -= 1;
    }
    let mut head_text = sections[..tail_start].join("\n\n");
    let mut tail: Vec<String> = sections[tail_start..].to_vec();
    // Not even the newest section fits: its end goes into the real turn, its start into context.
    if tail.is_empty() && !head_text.is_empty() {
        let keep = room.saturating_sub(16).max(room / 2);
        let mut cut = floor_boundary(&head_text, head_text.len().saturating_sub(keep));
        // Start the kept end at a word.
        if let Some(space) = head_text[cut..].find(char::is_whitespace)
            && space < keep / 5
        {
            cut += space;
        }
        tail.push(format!("(continued)\n{}", &head_text[cut..]));
        head_text.truncate(cut);
    }
    let mut prompt_parts: Vec<String> = lead.into_iter().collect();
    prompt_parts.extend(tail);
    let part_room = budget
        .saturating_sub(CONTEXT_HEADER_ROOM + CONTEXT_FOOTER.len())
        .max(1);
    let chunks = split_text(&head_text, part_room);
    let total = chunks.len();
    let context = chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| format!("[Context part {} of {total}]\n{c}{CONTEXT_FOOTER}", i + 1))
        .collect();
    Plan {
        context,
        prompt: prompt_parts.join("\n\n"),
    }
}

/// Cuts `text` into pieces of at most `max` bytes, preferring paragraph, then line breaks, then
/// spaces in the last fifth of each piece, never inside a UTF-8 character.
fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= max {
            out.push(rest.to_string());
            break;
        }
        let hard = floor_boundary(rest, max);
        let window = &rest[floor_boundary(rest, hard - hard / 5)..hard];
        let offset = hard - window.len();
        let cut = window
            .rfind("\n\n")
            .or_else(|| window.rfind('\n'))
            .or_else(|| window.rfind(' '))
            .map(|i| offset + i)
            .filter(|&i| i > 0)
            .unwrap_or(hard);
        out.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    out
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One message as a labelled section of the transcript.
fn render(m: &Message) -> String {
    match (m.role, &m.result_of) {
        (Role::Tool, Some(r)) => {
            tool_prompt::render_result(&r.call_id, r.name.as_deref(), r.is_error, m.text.trim_end())
        }
        (Role::Assistant, _) if !m.tool_calls.is_empty() => {
            let mut s = String::from("[Assistant]\n");
            if !m.text.trim().is_empty() {
                s.push_str(m.text.trim_end());
                s.push('\n');
            }
            s.push_str(&tool_prompt::render_calls(&m.tool_calls));
            s
        }
        (role, _) => format!("[{}]\n{}", role.label(), m.text.trim_end()),
    }
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
