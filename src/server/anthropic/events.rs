//! The streamed answer: Anthropic's named SSE events.
//!
//! Order: `message_start` (the message with empty content), then per block
//! `content_block_start`, `content_block_delta`s and `content_block_stop` (a `thinking` block
//! first when there was reasoning, then the `text` block, then a `tool_use` block per call; see
//! [`super::blocks`]), then `message_delta` with
//! `stop_reason` and the output tokens, and `message_stop`. Idle gaps carry `ping` events.
//! An upstream error after the first byte becomes an `error` event, and the stream ends.
//!
//! The stream owns the upstream [`Turn`](crate::upstream::Turn) (inside [`Running`](crate::relay::Running)): when the
//! client disconnects, axum drops the stream, which drops the turn, which closes the upstream
//! WebSocket.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Value, json};

use super::blocks::{Blocks, Kind, Step};
use super::meta::{MessageMeta, output_tokens};
use crate::server::AppState;
use crate::server::answer::Answer;
use crate::server::pump::{ApiEvents, pump};
use crate::server::turn::Started;
use crate::upstream::{TurnEvent, UpstreamError};

/// One named event; `data` carries the same `type` as the event name, as Anthropic sends it.
fn event(name: &'static str, mut data: Value) -> Event {
    data["type"] = Value::String(name.to_string());
    Event::default().event(name).data(data.to_string())
}

/// The event for one block step.
fn step_event(step: Step) -> Event {
    match step {
        Step::Start { index, kind } => {
            let block = match kind {
                Kind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
                _ => json!({"type": "text", "text": ""}),
            };
            event(
                "content_block_start",
                json!({"index": index, "content_block": block}),
            )
        }
        Step::Delta { index, kind, text } => {
            let delta = match kind {
                Kind::Thinking => json!({"type": "thinking_delta", "thinking": text}),
                Kind::Text => json!({"type": "text_delta", "text": text}),
                Kind::ToolUse => json!({"type": "input_json_delta", "partial_json": text}),
            };
            event(
                "content_block_delta",
                json!({"index": index, "delta": delta}),
            )
        }
        Step::StartTool { index, id, name } => event(
            "content_block_start",
            json!({"index": index, "content_block":
                {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ),
        Step::Stop { index } => event("content_block_stop", json!({"index": index})),
    }
}

/// The Anthropic events of a streamed answer: content blocks and message events.
struct MessageEvents {
    blocks: Blocks,
}

impl ApiEvents for MessageEvents {
    fn push_event(&mut self, ev: &TurnEvent, _answer: &Answer, out: &mut VecDeque<Event>) {
        out.extend(self.blocks.push(ev).into_iter().map(step_event));
    }

    fn finish(&mut self, answer: &Answer, out: &mut VecDeque<Event>) {
        out.extend(self.blocks.finish().into_iter().map(step_event));
        let usage = json!({"output_tokens": output_tokens(answer)});
        let reason = answer.finish_reason().anthropic();
        out.push_back(event(
            "message_delta",
            json!({"delta": {"stop_reason": reason, "stop_sequence": null}, "usage": usage}),
        ));
        out.push_back(event("message_stop", json!({})));
    }

    fn fail(&mut self, e: UpstreamError, _answer: &Answer, out: &mut VecDeque<Event>) {
        let err = crate::server::turn::counted(e);
        tracing::warn!(error = %err, "upstream failed mid-stream");
        out.push_back(event("error", super::error::body(&err)));
    }
}

pub fn respond(
    app: AppState,
    started: Started,
    meta: MessageMeta,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let blocks = Blocks::new(app.config().reasoning);
    let start = meta.message(json!([]), None, 1);
    let opening = vec![event("message_start", json!({"message": start}))];
    let stream = pump(app, started, MessageEvents { blocks }, opening);
    let ping = Event::default()
        .event("ping")
        .data(json!({"type": "ping"}).to_string());
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .event(ping),
    )
}
