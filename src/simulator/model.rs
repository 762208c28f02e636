//! The simulated model: what a turn answers, given its prompt and the earlier prompts of its
//! chat history. It follows the section "The simulator's model" of docs/tool-emulation.md, so the
//! proxy's tool emulation can be tested end to end without a real model:
//!
//! 1. a context turn (`[Context part N of M]`) answers `OK`;
//! 2. a repair turn (`[Tool call error]`) answers the corrected block of the turn it repairs
//!    (still malformed with `[[tool-garbage-always]]`);
//! 3. tool results in the newest input answer `The tool returned: <first result's content>`;
//! 4. `call <tool> <json>` lines in the newest user message, for offered tools, answer
//!    `I will call <tool>.` and the block, shaped by the `[[tool-…]]` directives;
//! 5. anything else gets the deterministic [`reply_text`], unchanged, which the benchmark and
//!    most tests rely on.
//!
//! Answers other than the deterministic reply are streamed byte-exact ([`Split::Exact`]): a
//! block's whitespace and a tool result's content must reach the proxy untouched.

use super::prompt::{
    self, Call, Directives, Garbage, Section, calls, directives, first_tool_result,
    is_context_part, is_repair, newest_input, newest_user_message, offered_tools, sections,
};
use super::reply_text;
use super::tool_block::block;

/// How the text of an answer is cut into `update` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// One word per frame, whitespace collapsed to one space: the deterministic reply.
    Words,
    /// Fixed-size chunks on character boundaries: the text arrives exactly as written.
    Exact,
}

/// What a turn says and how it is streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub text: String,
    pub split: Split,
}

impl Answer {
    fn exact(text: impl Into<String>) -> Answer {
        Answer {
            text: text.into(),
            split: Split::Exact,
        }
    }
}

/// The answer to `prompt`, turn number `turn` of a history whose earlier prompts are `earlier`
/// (oldest first). `words` sizes the deterministic reply.
pub(crate) fn answer(earlier: &[&str], prompt: &str, turn: u32, words: usize) -> Answer {
    let plain = || Answer {
        text: reply_text(prompt, turn, words),
        split: Split::Words,
    };
    if is_context_part(prompt) {
        return Answer::exact("OK");
    }
    if is_repair(prompt) {
        return repair(earlier).unwrap_or_else(plain);
    }
    // A turn after context turns is still the first real turn: it carries the transcript.
    let continued = earlier.iter().any(|p| !is_context_part(p));
    let all = sections(prompt);
    let input = newest_input(&all, continued);
    if let Some(content) = first_tool_result(input) {
        return Answer::exact(format!("The tool returned: {content}"));
    }
    match intent(earlier, prompt, input) {
        Some(Intent { calls, directives }) => {
            let garbage = directives.garbage != Garbage::Never;
            let mut text = format!("I will call {}.\n", names(&calls));
            text.push_str(&block(&calls, &directives.drifts, garbage));
            Answer::exact(text)
        }
        None => plain(),
    }
}

/// Calls the user asked for, with the directives that shape the block.
struct Intent<'a> {
    calls: Vec<Call<'a>>,
    directives: Directives,
}

/// The calls to answer with, if the newest user message asks for some, every one of them names
/// an offered tool, and `[[tool-ignore]]` is absent.
fn intent<'a>(earlier: &[&str], prompt: &str, input: &[Section<'a>]) -> Option<Intent<'a>> {
    let message = newest_user_message(input);
    let calls = calls(&message);
    if calls.is_empty() {
        return None;
    }
    let directives = directives(&message);
    if directives.ignore {
        return None;
    }
    let offered = std::iter::once(prompt)
        .chain(earlier.iter().rev().copied())
        .find_map(offered_tools)?;
    calls
        .iter()
        .all(|c| offered.iter().any(|t| t == c.name))
        .then_some(Intent { calls, directives })
}

/// The corrected block for the turn a repair turn refers to: the latest earlier turn that is
/// neither a repair nor a context turn. `None` when that turn asked for no call.
fn repair(earlier: &[&str]) -> Option<Answer> {
    let at = earlier
        .iter()
        .rposition(|p| !is_repair(p) && !is_context_part(p))?;
    let original = earlier[at];
    let before = &earlier[..at];
    let continued = before.iter().any(|p| !is_context_part(p));
    let all = sections(original);
    let input = prompt::newest_input(&all, continued);
    let Intent { calls, directives } = intent(before, original, input)?;
    let garbage = directives.garbage == Garbage::Always;
    Some(Answer::exact(block(&calls, &directives.drifts, garbage)))
}

/// `A`, `A and B`, `A, B and C`.
fn names(calls: &[Call<'_>]) -> String {
    match calls {
        [] => String::new(),
        [only] => only.name.to_owned(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(|c| c.name).collect();
            format!("{} and {}", init.join(", "), last.name)
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
