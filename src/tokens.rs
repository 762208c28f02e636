//! Token counts: the proxy's own estimates with the `o200k_base` tokenizer (the one of OpenAI's
//! current models), used for `usage` on both API surfaces and for `/v1/messages/count_tokens`.
//!
//! cto.new reports no usage and bills by its own rules, so these numbers are what a client would
//! pay at an OpenAI-like tokenizer, not what the upstream charged. They are stable: the same text
//! always gives the same count. The tokenizer tables ship inside `tiktoken-rs` (no download).
//!
//! They are built on first use (`o200k_base_singleton` is a lazily built static), not at
//! start-up: they are most of an idle proxy's memory (about 40 MB of RSS), and a proxy that
//! waits for requests should not hold them. The price is paid once per process, by the first
//! request that counts tokens: about 90 ms in a release build, a second in a debug build.

use crate::conversation::Message;

/// Tokens a chat format adds around each message (role markers, separators).
pub const PER_MESSAGE: u64 = 4;
/// Tokens that prime the assistant's reply.
pub const PER_REQUEST: u64 = 2;

/// Tokens of `text`. Special-token strings such as `<|endoftext|>` count as ordinary text: a
/// client's text must never be read as control tokens.
pub fn count(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// Tokens of a conversation: each message's text and tool calls plus [`PER_MESSAGE`], plus
/// [`PER_REQUEST`].
pub fn count_messages(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| {
            let calls: u64 = m
                .tool_calls
                .iter()
                .map(|c| count(&c.name) + count(&c.arguments))
                .sum();
            count(&m.text) + calls + PER_MESSAGE
        })
        .sum::<u64>()
        + PER_REQUEST
}

/// Tokens of the tool definitions offered (name, description and schema of each).
pub fn count_tools(set: &crate::tools::ToolSet) -> u64 {
    set.specs()
        .iter()
        .map(|t| count(&t.name) + count(&t.description) + count(&t.parameters.to_string()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Role;

    #[test]
    fn known_counts_for_fixed_strings() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        assert_eq!(count("The quick brown fox jumps over the lazy dog."), 10);
    }

    #[test]
    fn special_token_text_is_ordinary_text() {
        assert!(count("<|endoftext|>") > 1);
    }

    #[test]
    fn messages_add_overhead_per_message() {
        let m = [
            Message::new(Role::System, "hello world"),
            Message::new(Role::User, "hello world"),
        ];
        assert_eq!(count_messages(&m), 2 * (2 + PER_MESSAGE) + PER_REQUEST);
        assert_eq!(count_messages(&[]), PER_REQUEST);
    }

    #[test]
    fn longer_text_has_more_tokens() {
        let short = count("a short sentence");
        let long = count("a short sentence, and then a much longer continuation of it");
        assert!(long > short && short > 0);
        assert_eq!(count("a short sentence"), short);
    }
}
