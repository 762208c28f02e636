//! The streamed answer: OpenAI `chat.completion.chunk` events over SSE.
//!
//! Order: a first chunk with `role: assistant`, content/reasoning chunks, tool calls as
//! `tool_calls` deltas (the first delta of each call holds its index, id, type and name, the
//! next ones pieces of `function.arguments`), a last chunk with `finish_reason`, an optional
//! usage chunk (`stream_options.include_usage`), then `[DONE]`.
//! An upstream error after the first byte becomes a `data: {"error": ...}` event (what the
//! `openai` SDKs raise on) followed by `[DONE]`: every stream ends properly.
//!
//! The loop itself (and the cancellation on disconnect) is [`crate::server::pump`].

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Value, json};

use super::reasoning::ReasoningRouter;
use super::usage;
use crate::server::AppState;
use crate::server::answer::Answer;
use crate::server::pump::{ApiEvents, pump};
use crate::server::turn::Started;
use crate::store::now_ms;
use crate::upstream::{TurnEvent, UpstreamError};

/// The fields every chunk of one answer shares.
pub struct ChunkMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub prompt_tokens: u64,
    pub include_usage: bool,
    /// `{"id":..,"object":..,"created":..,"model":..,"choices":[{"index":0,"delta":` built once
    /// per answer: the per-token path only escapes the new text and concatenates.
    prefix: String,
}

impl ChunkMeta {
    pub fn new(model: &str, prompt_tokens: u64, include_usage: bool) -> Self {
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let created = now_ms() / 1000;
        let head = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model});
        let head = head.to_string();
        // `{"id":...,"model":"m"}` -> `{"id":...,"model":"m","choices":[{"index":0,"delta":`
        let prefix = format!(
            "{},\"choices\":[{{\"index\":0,\"delta\":",
            &head[..head.len() - 1]
        );
        ChunkMeta {
            id,
            created,
            model: model.to_string(),
            prompt_tokens,
            include_usage,
            prefix,
        }
    }

    /// A chunk carrying only text deltas, built without a JSON tree (the hot path).
    fn text_chunk(&self, reasoning: Option<&str>, content: Option<&str>) -> Event {
        Event::default().data(self.text_chunk_data(reasoning, content))
    }

    fn text_chunk_data(&self, reasoning: Option<&str>, content: Option<&str>) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 96);
        s.push_str(&self.prefix);
        s.push('{');
        if let Some(r) = reasoning {
            s.push_str("\"reasoning_content\":");
            push_json_str(&mut s, r);
        }
        if let Some(c) = content {
            if reasoning.is_some() {
                s.push(',');
            }
            s.push_str("\"content\":");
            push_json_str(&mut s, c);
        }
        s.push_str("},\"logprobs\":null,\"finish_reason\":null}]");
        if self.include_usage {
            s.push_str(",\"usage\":null");
        }
        s.push('}');
        s
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Event {
        let mut v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        Event::default().data(v.to_string())
    }

    fn usage_chunk(&self, prompt_tokens: u64, completion_tokens: u64) -> Event {
        let v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [], "usage": usage::usage_json(prompt_tokens, completion_tokens),
        });
        Event::default().data(v.to_string())
    }
}

/// The OpenAI events of a streamed answer: `chat.completion.chunk` events ending with `[DONE]`.
struct ChatChunks {
    meta: ChunkMeta,
    reasoning: ReasoningRouter,
}

impl ChatChunks {
    fn piece(&mut self, ev: &TurnEvent, out: &mut VecDeque<Event>) {
        if let Some(p) = self.reasoning.route(ev) {
            out.push_back(
                self.meta
                    .text_chunk(p.reasoning.as_deref(), p.content.as_deref()),
            );
        }
    }
}

impl ApiEvents for ChatChunks {
    fn push_event(&mut self, ev: &TurnEvent, _answer: &Answer, out: &mut VecDeque<Event>) {
        match ev {
            TurnEvent::Reasoning(_) | TurnEvent::Content(_) => self.piece(ev, out),
            TurnEvent::ToolCallStart { index, id, name } => {
                // A think block still open is closed before the calls.
                self.piece(&TurnEvent::Finished { cancelled: false }, out);
                let call = json!({"index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}});
                out.push_back(self.meta.chunk(json!({"tool_calls": [call]}), None));
            }
            TurnEvent::ToolCallArgs { index, delta } if !delta.is_empty() => {
                let call = json!({"index": index, "function": {"arguments": delta}});
                out.push_back(self.meta.chunk(json!({"tool_calls": [call]}), None));
            }
            _ => {}
        }
    }

    fn finish(&mut self, answer: &Answer, out: &mut VecDeque<Event>) {
        self.piece(&TurnEvent::Finished { cancelled: false }, out);
        let reason = answer.finish_reason().openai();
        out.push_back(self.meta.chunk(json!({}), Some(reason)));
        if self.meta.include_usage {
            let (prompt, completion) = usage::counts(self.meta.prompt_tokens, answer);
            out.push_back(self.meta.usage_chunk(prompt, completion));
        }
        out.push_back(Event::default().data("[DONE]"));
    }

    fn fail(&mut self, e: UpstreamError, _answer: &Answer, out: &mut VecDeque<Event>) {
        let err = crate::server::turn::counted(e);
        tracing::warn!(error = %err, "upstream failed mid-stream");
        out.push_back(Event::default().data(err.to_json().to_string()));
        out.push_back(Event::default().data("[DONE]"));
    }
}

/// Appends `text` as a JSON string literal.
fn push_json_str(out: &mut String, text: &str) {
    // serde_json's string escaping into a String never fails; an empty string if it ever did.
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

pub fn respond(
    app: AppState,
    started: Started,
    meta: ChunkMeta,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let reasoning = ReasoningRouter::new(app.config().reasoning);
    let opening = vec![meta.chunk(json!({"role": "assistant", "content": ""}), None)];
    let stream = pump(app, started, ChatChunks { meta, reasoning }, opening);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_chunks_match_the_json_tree_version() {
        for include_usage in [false, true] {
            let meta = ChunkMeta::new("GPT5", 3, include_usage);
            for (r, c) in [
                (None, Some("Hi \"there\"\n")),
                (Some("think ✓"), None),
                (Some("a"), Some("b")),
            ] {
                let mut delta = serde_json::Map::new();
                if let Some(r) = r {
                    delta.insert("reasoning_content".into(), Value::String(r.into()));
                }
                if let Some(c) = c {
                    delta.insert("content".into(), Value::String(c.into()));
                }
                let mut expected = json!({
                    "id": meta.id, "object": "chat.completion.chunk", "created": meta.created, "model": "GPT5",
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}],
                });
                if include_usage {
                    expected["usage"] = Value::Null;
                }
                let parsed: Value =
                    serde_json::from_str(&meta.text_chunk_data(r, c)).expect("valid JSON");
                assert_eq!(parsed, expected);
            }
        }
    }
}
