//! Reading the proxy's prompts the way the simulated model needs to (docs/tool-emulation.md):
//! the labelled sections (`[User]`, `[Assistant]`, `[Tool result …]`, …), the newest input,
//! the newest user message with its `call` lines and `[[tool-…]]` directives, and the offered
//! tools of the `<<<TOOLS>>>` block.
//!
//! Everything here is pure and borrows from the prompt text, so the model's decision in
//! `model` can be unit-tested on strings. The reader is lenient on purpose: a section it does
//! not recognise stays part of the one before it, and a line that does not parse as a call is
//! ordinary text, so ordinary prompts keep the ordinary reply.

/// The line the proxy ends a continued turn with; not part of the last section's content.
const REMINDER_PREFIX: &str = "(Reply in text, or call tools";

/// The first line of a context turn, `[Context part N of M]`.
const CONTEXT_PREFIX: &str = "[Context part ";

/// The first line of a repair turn.
const REPAIR_HEADER: &str = "[Tool call error]";

/// The kind of a labelled section, from its header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    System,
    User,
    Assistant,
    /// A plain `[Tool]` message (the transcript label of a tool message without emulation).
    Tool,
    /// The `[Tools]` block that describes the offered tools.
    Tools,
    /// `[Tool result call_id=… name=…]`, optionally with a trailing `error`.
    ToolResult,
    ToolCallError,
    ContextPart,
}

/// The label of a header line, if the line is one the proxy writes.
fn label_of(line: &str) -> Option<Label> {
    let inner = line.trim().strip_prefix('[')?.strip_suffix(']')?;
    // `[[tool-garbage]]` and friends are directives, not headers.
    if inner.starts_with('[') {
        return None;
    }
    Some(match inner {
        "System" => Label::System,
        "User" => Label::User,
        "Assistant" => Label::Assistant,
        "Tool" => Label::Tool,
        "Tools" => Label::Tools,
        "Tool call error" => Label::ToolCallError,
        _ if inner.starts_with("Tool result ") => Label::ToolResult,
        _ if inner.starts_with("Context part ") => Label::ContextPart,
        _ => return None,
    })
}

/// One labelled part of a prompt: its label (`None` for the text before the first header) and
/// its body, the text between its header line and the next header line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Section<'a> {
    pub label: Option<Label>,
    pub body: &'a str,
}

/// The sections of a prompt in order. The unlabelled head is included only when non-blank.
pub(crate) fn sections(prompt: &str) -> Vec<Section<'_>> {
    let mut out = Vec::new();
    let mut label = None;
    let mut body_start = 0;
    let mut offset = 0;
    for line in prompt.split_inclusive('\n') {
        if let Some(next) = label_of(line) {
            let body = &prompt[body_start..offset];
            if label.is_some() || !body.trim().is_empty() {
                out.push(Section { label, body });
            }
            label = Some(next);
            body_start = offset + line.len();
        }
        offset += line.len();
    }
    let body = &prompt[body_start..];
    if label.is_some() || !body.trim().is_empty() {
        out.push(Section { label, body });
    }
    out
}

fn first_line(prompt: &str) -> &str {
    prompt
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Whether the prompt is a context turn (`[Context part N of M]` first).
pub(crate) fn is_context_part(prompt: &str) -> bool {
    let line = first_line(prompt);
    line.starts_with(CONTEXT_PREFIX) && line.ends_with(']')
}

/// Whether the prompt is the proxy's repair turn (`[Tool call error]` first).
pub(crate) fn is_repair(prompt: &str) -> bool {
    first_line(prompt) == REPAIR_HEADER
}

/// The newest input: what follows the last `[Assistant]` section of a first turn, or every
/// section of a continued turn (whose prompt holds only new messages).
pub(crate) fn newest_input<'s, 'a>(all: &'s [Section<'a>], continued: bool) -> &'s [Section<'a>] {
    let start = if continued {
        0
    } else {
        all.iter()
            .rposition(|s| s.label == Some(Label::Assistant))
            .map_or(0, |i| i + 1)
    };
    &all[start..]
}

/// `body` without a trailing reminder line, trimmed of surrounding whitespace.
fn without_reminder(body: &str) -> &str {
    let body = body.trim();
    match body.rsplit_once('\n') {
        Some((head, last)) if last.trim_start().starts_with(REMINDER_PREFIX) => head.trim(),
        None if body.starts_with(REMINDER_PREFIX) => "",
        _ => body,
    }
}

/// The content of the first tool result among `input`, trimmed (the proxy's reminder line,
/// when it follows the result directly, is not content).
pub(crate) fn first_tool_result<'a>(input: &[Section<'a>]) -> Option<&'a str> {
    input
        .iter()
        .find(|s| s.label == Some(Label::ToolResult))
        .map(|s| without_reminder(s.body))
}

/// The newest user message among `input`: the last `[User]` section, or, for a prompt
/// without one (a lone message sent verbatim), every unlabelled or `[Tools]` body with the
/// tools block itself cut out.
pub(crate) fn newest_user_message<'a>(input: &[Section<'a>]) -> Vec<&'a str> {
    if let Some(user) = input.iter().rfind(|s| s.label == Some(Label::User)) {
        return vec![user.body];
    }
    input
        .iter()
        .filter_map(|s| match s.label {
            None => Some(s.body),
            // The user's words may follow the tools block inside the same section.
            Some(Label::Tools) => s.body.split_once(END_TOOLS).map(|(_, rest)| rest),
            Some(_) => None,
        })
        .collect()
}

/// One `call <tool-name> <json-arguments>` line of a user message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    pub name: &'a str,
    /// The arguments exactly as written (valid JSON; `{}` when the line gave none).
    pub args: &'a str,
}

/// The `call` lines of a message, in order. A line whose arguments are not JSON is text.
pub(crate) fn calls<'a>(message: &[&'a str]) -> Vec<Call<'a>> {
    message
        .iter()
        .flat_map(|m| m.lines())
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("call ")?.trim_start();
            let (name, args) = rest
                .split_once(char::is_whitespace)
                .map_or((rest, ""), |(n, a)| (n, a.trim()));
            let args = if args.is_empty() { "{}" } else { args };
            serde_json::from_str::<serde::de::IgnoredAny>(args).ok()?;
            Some(Call { name, args })
        })
        .collect()
}

/// How a block is written wrong on purpose (`[[tool-drift:KIND]]`), one of the drifts the
/// proxy's parser promises to tolerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drift {
    /// `<<< TOOL_CALLS >>>`.
    Spaces,
    /// `<<<tool_calls>>>`.
    Lowercase,
    /// No closing marker at the end of the turn.
    NoClose,
    /// A comma after the last member of each call object and of the array.
    TrailingComma,
    /// Single-quoted strings wherever that is unambiguous.
    SingleQuotes,
    /// `arguments` as a JSON string holding the object.
    StringArgs,
    /// `{"tool", "input"}` for the 1st, 3rd… call, `{"function": {"name", "arguments"}}` for
    /// the others: both spellings in one block of two calls.
    AltKeys,
    /// An example block inside a code fence first, then the real block.
    FencedProse,
}

impl Drift {
    fn parse(kind: &str) -> Option<Drift> {
        Some(match kind {
            "spaces" => Drift::Spaces,
            "lowercase" => Drift::Lowercase,
            "no-close" => Drift::NoClose,
            "trailing-comma" => Drift::TrailingComma,
            "single-quotes" => Drift::SingleQuotes,
            "string-args" => Drift::StringArgs,
            "alt-keys" => Drift::AltKeys,
            "fenced-prose" => Drift::FencedProse,
            _ => return None,
        })
    }
}

/// Whether the model writes its block malformed (`[[tool-garbage]]`, `[[tool-garbage-always]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Garbage {
    #[default]
    Never,
    /// Malformed in the first answer, correct after a repair turn.
    Once,
    /// Malformed in every answer.
    Always,
}

/// The `[[tool-…]]` directives of a user message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    pub garbage: Garbage,
    /// Every drift asked for, in order of appearance, each once.
    pub drifts: Vec<Drift>,
    /// `[[tool-ignore]]`: answer in plain text whatever the calls.
    pub ignore: bool,
}

/// The directives written anywhere in a message (unknown ones are ignored).
pub(crate) fn directives(message: &[&str]) -> Directives {
    let mut d = Directives::default();
    for text in message {
        let mut rest = *text;
        while let Some(start) = rest.find("[[tool-") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("]]") else { break };
            match &after[..end] {
                "tool-garbage" if d.garbage == Garbage::Never => d.garbage = Garbage::Once,
                "tool-garbage-always" => d.garbage = Garbage::Always,
                "tool-ignore" => d.ignore = true,
                other => {
                    if let Some(drift) = other.strip_prefix("tool-drift:").and_then(Drift::parse)
                        && !d.drifts.contains(&drift)
                    {
                        d.drifts.push(drift);
                    }
                }
            }
            rest = &after[end + 2..];
        }
    }
    d
}

const TOOLS: &str = "<<<TOOLS>>>";
const END_TOOLS: &str = "<<<END_TOOLS>>>";

/// The tool names of the last `<<<TOOLS>>>` block in `prompt`, if it has one. Each line of the
/// block is a JSON object with a `name`; a line that is not is skipped.
pub(crate) fn offered_tools(prompt: &str) -> Option<Vec<String>> {
    let start = prompt
        .rmatch_indices(TOOLS)
        .map(|(i, _)| i)
        .find(|&i| is_whole_line(prompt, i, TOOLS.len()))?;
    let block = &prompt[start + TOOLS.len()..];
    let block = block.split(END_TOOLS).next().unwrap_or(block);
    Some(
        block
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
            .filter_map(|v| v.get("name")?.as_str().map(str::to_owned))
            .collect(),
    )
}

/// Whether `prompt[at..at + len]` is a line of its own (surrounding spaces allowed).
fn is_whole_line(prompt: &str, at: usize, len: usize) -> bool {
    let before = prompt[..at].rsplit('\n').next().unwrap_or("");
    let after = prompt[at + len..].split('\n').next().unwrap_or("");
    before.trim().is_empty() && after.trim().is_empty()
}
