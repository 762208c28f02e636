//! Token counts for `usage`: the proxy's estimates with the `o200k_base` tokenizer (see
//! [`crate::tokens`]), not cto.new's billing, which the upstream does not report.
//!
//! Prompt tokens are the request's messages with a small per-message overhead; completion
//! tokens are everything the client received (reasoning and content).

use crate::conversation::Message;
use crate::server::answer::Answer;
use crate::tokens;

/// Prompt and completion tokens of an answer: the upstream's own counts when it reported them
/// (the CLI door), else the estimates (`prompt_estimate` and the answer's text, reasoning and
/// tool calls through the tokenizer).
pub fn counts(prompt_estimate: u64, answer: &Answer) -> (u64, u64) {
    if let Some(u) = answer.usage {
        return (u.prompt_tokens, u.completion_tokens);
    }
    let calls: u64 = answer
        .calls
        .iter()
        .map(|c| tokens::count(&c.name) + tokens::count(&c.arguments))
        .sum();
    (
        prompt_estimate,
        completion_tokens(&answer.reasoning, &answer.text) + calls,
    )
}

/// Tokens of the request's messages.
pub fn estimate_messages(messages: &[Message]) -> u64 {
    tokens::count_messages(messages)
}

/// Tokens of the emitted answer: pass the reasoning and the content the client received.
pub fn completion_tokens(reasoning: &str, content: &str) -> u64 {
    tokens::count(reasoning) + tokens::count(content)
}

pub fn usage_json(prompt: u64, completion: u64) -> serde_json::Value {
    serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Role;

    #[test]
    fn prompt_and_completion_use_the_tokenizer() {
        let m = [Message::new(Role::User, "hello world")];
        assert_eq!(estimate_messages(&m), 2 + 4 + 2);
        assert_eq!(completion_tokens("hello world", "hello world"), 4);
        assert_eq!(usage_json(8, 4)["total_tokens"], 12);
    }
}
