//! What the whole answer (`messages`) and the streamed one (`events`) share: the message's id,
//! model and input tokens, the `message` object built from them, and the output token count.

use serde_json::{Value, json};

use crate::server::answer::Answer;

/// What every part of one answer shares.
pub struct MessageMeta {
    pub id: String,
    pub model: String,
    pub input_tokens: u64,
}

impl MessageMeta {
    pub fn new(model: &str, input_tokens: u64) -> Self {
        MessageMeta {
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            model: model.to_string(),
            input_tokens,
        }
    }

    /// The `message` object with the given content, stop reason and output tokens.
    pub fn message(&self, content: Value, stop_reason: Option<&str>, output_tokens: u64) -> Value {
        json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": output_tokens},
        })
    }
}

/// Output tokens: the upstream's count when it reported one, else everything the client
/// received (thinking, text and tool calls) through the tokenizer.
pub fn output_tokens(answer: &Answer) -> u64 {
    crate::server::openai::usage::counts(0, answer).1
}
