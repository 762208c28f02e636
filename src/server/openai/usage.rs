//! Token counts for `usage`. These are the proxy's estimates (about four characters per token,
//! never zero for non-empty text), not the upstream's billing, which cto.new does not report.

use crate::conversation::Message;

pub fn estimate_text(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

pub fn estimate_messages(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| estimate_text(m.text.len()) + 4)
        .sum::<u64>()
        + 2
}

pub fn usage_json(prompt: u64, completion: u64) -> serde_json::Value {
    serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}
