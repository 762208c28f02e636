//! What the CLI door's model answers to an OpenAI Chat Completions body (pure): tool calls for
//! `call` lines naming offered tools, a quote of the newest tool result, or the web door's
//! deterministic reply. Also the usage it reports, in whitespace-separated words, which is all
//! a test needs from a token count: deterministic and growing with the text.

use serde_json::Value;

use crate::simulator::prompt::{calls, directives};
use crate::simulator::reply_text;
use crate::simulator::util::random_alnum;

/// One native tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolCall {
    /// `call_…`, fresh per answer.
    pub id: String,
    pub name: String,
    /// The arguments exactly as the user wrote them on the `call` line (JSON text).
    pub arguments: String,
}

/// What the assistant message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Text(String),
    ToolCalls(Vec<ToolCall>),
}

/// The answer to a request, with the turn number (user messages so far) for the reasoning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub reply: Reply,
    pub turn: u32,
}

/// The text of a message's `content`: a string, or the `text` of each part joined by newlines.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn role(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or("")
}

/// The names of the offered tools: `tools[].function.name` (a bare `name` is accepted too).
fn offered(tools: Option<&Value>) -> Vec<&str> {
    tools
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t.get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| t.get("name"))
                .and_then(Value::as_str)
        })
        .collect()
}

/// The answer to a completion request body (`messages`, `tools`, `tool_choice`); `words` sizes
/// the deterministic reply.
pub(crate) fn answer(body: &Value, words: usize) -> Answer {
    let messages: &[Value] = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let turn = messages.iter().filter(|m| role(m) == "user").count().max(1) as u32;
    let trailing_tools = messages.iter().rev().take_while(|m| role(m) == "tool");
    if let Some(first) = trailing_tools.last() {
        let content = content_text(first.get("content").unwrap_or(&Value::Null));
        return Answer {
            reply: Reply::Text(format!("The tool returned: {}", content.trim())),
            turn,
        };
    }
    let user = messages
        .iter()
        .rfind(|m| role(m) == "user")
        .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
        .unwrap_or_default();
    let plain = || Answer {
        reply: Reply::Text(reply_text(&user, turn, words)),
        turn,
    };
    let message = [user.as_str()];
    let wanted = calls(&message);
    let tool_choice_none = body.get("tool_choice").and_then(Value::as_str) == Some("none");
    let offered = offered(body.get("tools"));
    if wanted.is_empty()
        || tool_choice_none
        || directives(&message).ignore
        || !wanted.iter().all(|c| offered.contains(&c.name))
    {
        return plain();
    }
    let calls = wanted
        .iter()
        .map(|c| ToolCall {
            id: format!("call_{}", random_alnum(24)),
            name: c.name.to_owned(),
            arguments: c.args.to_owned(),
        })
        .collect();
    Answer {
        reply: Reply::ToolCalls(calls),
        turn,
    }
}

fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// `prompt_tokens` of a request: the words of every message's content.
pub(crate) fn prompt_tokens(body: &Value) -> u64 {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| word_count(&content_text(m.get("content").unwrap_or(&Value::Null))))
        .sum::<u64>()
        .max(1)
}

/// `completion_tokens` of an answer: the words of its text, or of its calls' names and
/// arguments, plus those of the reasoning.
pub(crate) fn completion_tokens(reply: &Reply, reasoning: Option<&str>) -> u64 {
    let answer = match reply {
        Reply::Text(t) => word_count(t),
        Reply::ToolCalls(calls) => calls.iter().map(|c| 1 + word_count(&c.arguments)).sum(),
    };
    answer + reasoning.map_or(0, word_count)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tools() -> Value {
        json!([{"type": "function", "function": {"name": "Read", "parameters": {}}},
               {"type": "function", "function": {"name": "Write", "parameters": {}}}])
    }

    #[test]
    fn call_lines_for_offered_tools_become_tool_calls_with_verbatim_arguments() {
        let body = json!({"messages": [
            {"role": "system", "content": "terse"},
            {"role": "user", "content": [{"type": "text", "text": "do it"},
                                         {"type": "text", "text": "call Read {\"p\":  1}\ncall Write"}]},
        ], "tools": tools()});
        let a = answer(&body, 12);
        let Reply::ToolCalls(calls) = a.reply else {
            panic!("expected calls: {a:?}")
        };
        let got: Vec<_> = calls
            .iter()
            .map(|c| (c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(got, [("Read", "{\"p\":  1}"), ("Write", "{}")]);
        assert!(calls.iter().all(|c| c.id.starts_with("call_")));
        assert_ne!(calls[0].id, calls[1].id);
    }

    #[test]
    fn unoffered_tools_tool_choice_none_and_ignore_answer_plain_text() {
        for body in [
            json!({"messages": [{"role": "user", "content": "call Bash {}"}], "tools": tools()}),
            json!({"messages": [{"role": "user", "content": "call Read {}"}]}),
            json!({"messages": [{"role": "user", "content": "call Read {}"}], "tools": tools(),
                   "tool_choice": "none"}),
            json!({"messages": [{"role": "user", "content": "[[tool-ignore]]\ncall Read {}"}],
                   "tools": tools()}),
        ] {
            let user = body["messages"][0]["content"].as_str().unwrap_or_default();
            assert_eq!(
                answer(&body, 12).reply,
                Reply::Text(reply_text(user, 1, 12)),
                "{body}"
            );
        }
    }

    #[test]
    fn trailing_tool_messages_quote_the_first_one() {
        let body = json!({"messages": [
            {"role": "user", "content": "call Read {}"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "tool_call_id": "a", "content": "\n  first\n  result \n"},
            {"role": "tool", "tool_call_id": "b", "content": "second"},
        ], "tools": tools()});
        assert_eq!(
            answer(&body, 12).reply,
            Reply::Text("The tool returned: first\n  result".into())
        );
        // Once a user speaks after them, they are history.
        let mut later = body.clone();
        if let Some(m) = later["messages"].as_array_mut() {
            m.push(json!({"role": "user", "content": "thanks"}));
        }
        let a = answer(&later, 12);
        assert_eq!(a.reply, Reply::Text(reply_text("thanks", 2, 12)));
        assert_eq!(a.turn, 2);
    }

    #[test]
    fn usage_counts_words() {
        let body = json!({"messages": [{"role": "user", "content": "one two"},
                                       {"role": "user", "content": [{"type": "text", "text": "three"}]}]});
        assert_eq!(prompt_tokens(&body), 3);
        assert_eq!(
            completion_tokens(&Reply::Text("a b c".into()), Some("x y")),
            5
        );
    }
}
