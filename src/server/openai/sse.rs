//! The streamed answer: OpenAI `chat.completion.chunk` events over SSE.
//!
//! Order: a first chunk with `role: assistant`, content/reasoning chunks, a last chunk with
//! `finish_reason`, an optional usage chunk (`stream_options.include_usage`), then `[DONE]`.
//! An upstream error after the first byte becomes a `data: {"error": ...}` event (what the
//! `openai` SDKs raise on) followed by `[DONE]`: every stream ends properly.
//!
//! The stream owns the upstream [`Turn`](crate::upstream::Turn): when the client disconnects,
//! axum drops the stream, which drops the turn, which closes the upstream WebSocket.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Value, json};

use super::shape::Shaper;
use super::usage;
use crate::relay::Running;
use crate::server::AppState;
use crate::store::now_ms;
use crate::upstream::{TurnEvent, UpstreamError};

/// The fields every chunk of one answer shares.
pub struct ChunkMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub prompt_tokens: u64,
    pub include_usage: bool,
}

impl ChunkMeta {
    pub fn new(model: &str, prompt_tokens: u64, include_usage: bool) -> Self {
        ChunkMeta {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created: now_ms() / 1000,
            model: model.to_string(),
            prompt_tokens,
            include_usage,
        }
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

    fn usage_chunk(&self, completion_tokens: u64) -> Event {
        let v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [], "usage": usage::usage_json(self.prompt_tokens, completion_tokens),
        });
        Event::default().data(v.to_string())
    }
}

struct StreamState {
    app: AppState,
    running: Running,
    meta: ChunkMeta,
    shaper: Shaper,
    pending: VecDeque<Event>,
    done: bool,
}

impl StreamState {
    fn push_event(&mut self, ev: &TurnEvent) -> bool {
        if let Some(p) = self.shaper.shape(ev) {
            let mut delta = serde_json::Map::new();
            if let Some(r) = p.reasoning {
                delta.insert("reasoning_content".into(), Value::String(r));
            }
            if let Some(c) = p.content {
                delta.insert("content".into(), Value::String(c));
            }
            let chunk = self.meta.chunk(Value::Object(delta), None);
            self.pending.push_back(chunk);
        }
        matches!(ev, TurnEvent::Finished { .. })
    }

    fn finish(&mut self) {
        self.pending
            .push_back(self.meta.chunk(json!({}), Some("stop")));
        if self.meta.include_usage {
            let completion = self.shaper.completion_tokens();
            self.pending.push_back(self.meta.usage_chunk(completion));
        }
        self.pending.push_back(Event::default().data("[DONE]"));
        self.done = true;
    }

    fn fail(&mut self, e: UpstreamError) {
        let err = super::chat::counted(e);
        tracing::warn!(error = %err, "upstream failed mid-stream");
        self.pending
            .push_back(Event::default().data(err.to_json().to_string()));
        self.pending.push_back(Event::default().data("[DONE]"));
        self.done = true;
    }
}

pub fn respond(
    app: AppState,
    running: Running,
    first: TurnEvent,
    meta: ChunkMeta,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let shaper = Shaper::new(app.config().reasoning);
    let mut st = StreamState {
        app,
        running,
        meta,
        shaper,
        pending: VecDeque::new(),
        done: false,
    };
    st.pending.push_back(
        st.meta
            .chunk(json!({"role": "assistant", "content": ""}), None),
    );
    let stream =
        futures_util::stream::unfold((st, Some(first)), |(mut st, mut first)| async move {
            loop {
                if let Some(ev) = st.pending.pop_front() {
                    return Some((Ok(ev), (st, first)));
                }
                if st.done {
                    return None;
                }
                let next = match first.take() {
                    Some(ev) => Some(Ok(ev)),
                    None => st.running.turn.next().await,
                };
                match next {
                    Some(Ok(ev)) => {
                        if st.push_event(&ev) {
                            st.running
                                .completion
                                .remember(st.app.store(), &st.shaper.answer)
                                .await;
                            st.finish();
                        }
                    }
                    Some(Err(e)) => st.fail(e),
                    None => st.fail(UpstreamError::StreamClosed(
                        "the stream ended before the turn finished".into(),
                    )),
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
