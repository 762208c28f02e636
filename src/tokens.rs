//! Token counts: the proxy's own estimates with the `o200k_base` tokenizer (the one of OpenAI's
//! current models), used for `usage` on both API surfaces and for `/v1/messages/count_tokens`.
//!
//! cto.new reports no usage and bills by its own rules, so these numbers are what a client would
//! pay at an OpenAI-like tokenizer, not what the upstream charged. They are stable: the same text
//! always gives the same count. The tokenizer tables ship inside `tiktoken-rs` (no download).
//!
//! # Memory
//! Counting needs the pre-tokenizer pattern and the rank of every token, nothing else. So
//! `Counter` keeps just that: it builds `tiktoken-rs`'s full tokenizer once, copies the ranks
//! out and drops the rest (the decoder tables, a sorted copy of every token, per-thread regex
//! clones): less than half the memory, with the same counts (a test checks them against
//! `tiktoken-rs` on a corpus). It is built on first use, not at start-up: a proxy that waits
//! for requests should not hold it. The price is paid once per process, by the first request
//! that counts tokens: 0.1 to 0.5 s in a release build (by the machine's load), seconds in a
//! debug build.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::conversation::Message;

/// Tokens a chat format adds around each message (role markers, separators).
pub const PER_MESSAGE: u64 = 4;
/// Tokens that prime the assistant's reply.
pub const PER_REQUEST: u64 = 2;

/// What counting needs of `o200k_base`.
struct Counter {
    /// Token bytes -> rank (the BPE merge order).
    ranks: HashMap<Vec<u8>, tiktoken_rs::Rank>,
    /// The pre-tokenizer: BPE runs inside each of its matches.
    pattern: fancy_regex::Regex,
}

/// `None` only if the tables that ship in the binary do not build (then counts are 0).
static COUNTER: LazyLock<Option<Counter>> = LazyLock::new(Counter::build);

impl Counter {
    fn build() -> Option<Counter> {
        let full = match tiktoken_rs::o200k_base() {
            Ok(full) => full,
            Err(e) => {
                tracing::error!(error = %e, "the o200k tokenizer does not build; token counts are 0");
                return None;
            }
        };
        let special: Vec<tiktoken_rs::Rank> = full
            .special_tokens()
            .iter()
            .filter_map(|s| full.encode_with_special_tokens(s).first().copied())
            .collect();
        // Ordinary ranks are 0..199_998; the special ones sit above. Stop after a long gap.
        let mut ranks = HashMap::with_capacity(200_000);
        let mut misses = 0;
        for rank in 0.. {
            match full.decode_bytes(&[rank]) {
                Ok(bytes) if !special.contains(&rank) => {
                    ranks.insert(bytes, rank);
                    misses = 0;
                }
                _ => misses += 1,
            }
            if misses > 1_000 {
                break;
            }
        }
        ranks.shrink_to_fit();
        let pattern = fancy_regex::Regex::new(tiktoken_rs::O200K_BASE_PAT_STR).ok()?;
        Some(Counter { ranks, pattern })
    }

    /// Tokens of `text` read as ordinary text (`encode_ordinary`'s length).
    fn count(&self, text: &str) -> u64 {
        let mut n = 0u64;
        for piece in self.pattern.find_iter(text) {
            let Ok(piece) = piece else { continue };
            let bytes = piece.as_str().as_bytes();
            n += if bytes.len() == 1 || self.ranks.contains_key(bytes) {
                1
            } else {
                self.merged_len(bytes) as u64
            };
        }
        n
    }
}

impl Counter {
    /// How many tokens byte-pair encoding makes of `piece` (two bytes or more): tiktoken's
    /// merge, lowest rank first, the leftmost of equal ranks first.
    fn merged_len(&self, piece: &[u8]) -> usize {
        // (start of a part, rank of the pair that starts there); the last two are sentinels.
        let rank_of = |parts: &[(usize, u32)], i: usize| -> u32 {
            match (parts.get(i), parts.get(i + 2)) {
                (Some(&(start, _)), Some(&(end, _))) => self
                    .ranks
                    .get(&piece[start..end])
                    .copied()
                    .unwrap_or(u32::MAX),
                _ => u32::MAX,
            }
        };
        let mut parts: Vec<(usize, u32)> = (0..=piece.len()).map(|i| (i, u32::MAX)).collect();
        for i in 0..parts.len() {
            parts[i].1 = rank_of(&parts, i);
        }
        // The leftmost pair of the lowest rank, while any pair merges.
        let lowest = |parts: &[(usize, u32)]| {
            parts[..parts.len() - 1]
                .iter()
                .enumerate()
                .fold(None, |best: Option<(usize, u32)>, (i, p)| match best {
                    Some((_, b)) if b <= p.1 => best,
                    _ => Some((i, p.1)),
                })
                .filter(|&(_, rank)| rank != u32::MAX)
        };
        while let Some((i, _)) = lowest(&parts) {
            parts.remove(i + 1);
            parts[i].1 = rank_of(&parts, i);
            if i > 0 {
                parts[i - 1].1 = rank_of(&parts, i - 1);
            }
        }
        parts.len() - 1
    }
}

/// Tokens of `text`. Special-token strings such as `<|endoftext|>` count as ordinary text: a
/// client's text must never be read as control tokens.
pub fn count(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    COUNTER.as_ref().map_or(0, |c| c.count(text))
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

    /// The lean counter against tiktoken-rs's own `encode_ordinary`, on text of many kinds:
    /// prose, code, JSON, numbers, whitespace runs, non-Latin scripts, emoji, special-token
    /// strings and one long piece without a break (BPE's long-input path).
    #[test]
    fn counts_match_tiktoken_on_a_corpus() {
        let full = tiktoken_rs::o200k_base_singleton();
        let long_word = "abcdefghij".repeat(30);
        let long_digits = "1234567890".repeat(20);
        let corpus = [
            "The quick brown fox jumps over the lazy dog.",
            "fn main() {\n    println!(\"hello, {}\", name);\n}\n",
            r#"{"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}"#,
            "3.14159 2,718 1e-9 0x1F 42nd 1000000",
            "   leading spaces\n\n\n\ttabs\r\nand CRLF   ",
            "Привет, мир! Γειά σου κόσμε. こんにちは世界。你好，世界。안녕하세요",
            "emoji 🙂🚀👩‍💻 and accents: café naïve façade Ångström",
            "<|endoftext|> <|endofprompt|> <|im_start|>user",
            "don't won't I'm you're they've we'll he'd SHOULDN'T",
            &long_word,
            &long_digits,
            "a",
            " ",
            "\u{0}\u{1}\u{7f}",
        ];
        for text in corpus {
            assert_eq!(
                count(text),
                full.encode_ordinary(text).len() as u64,
                "{text:?}"
            );
        }
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
