//! The streamed answer: Anthropic's named SSE events.
//!
//! Order: `message_start` (the message with empty content), then per block
//! `content_block_start`, `content_block_delta`s and `content_block_stop` (a `thinking` block
//! first when there was reasoning, then the `text` block), then `message_delta` with
//! `stop_reason` and the output tokens, and `message_stop`. Idle gaps carry `ping` events.
//! An upstream error after the first byte becomes an `error` event, and the stream ends.
//!
//! The stream owns the upstream [`Turn`](crate::upstream::Turn) (inside [`Running`]): when the
//! client disconnects, axum drops the stream, which drops the turn, which closes the upstream
//! WebSocket.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Value, json};

use super::blocks::{Blocks, Kind, Step};
use super::messages::{MessageMeta, output_tokens};
use crate::relay::Running;
use crate::server::AppState;
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
                Kind::Thinking => json!({"type": "thinking", "thinking": ""}),
                Kind::Text => json!({"type": "text", "text": ""}),
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
            };
            event(
                "content_block_delta",
                json!({"index": index, "delta": delta}),
            )
        }
        Step::Stop { index } => event("content_block_stop", json!({"index": index})),
    }
}

struct StreamState {
    app: AppState,
    running: Running,
    meta: MessageMeta,
    blocks: Blocks,
    pending: VecDeque<Event>,
    done: bool,
}

impl StreamState {
    /// Queues the events of one upstream event; true when the turn finished.
    fn push_event(&mut self, ev: &TurnEvent) -> bool {
        let steps = self.blocks.push(ev);
        self.pending.extend(steps.into_iter().map(step_event));
        matches!(ev, TurnEvent::Finished { .. })
    }

    fn finish(&mut self) {
        let usage = json!({"output_tokens": output_tokens(&self.blocks)});
        self.pending.push_back(event(
            "message_delta",
            json!({"delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": usage}),
        ));
        self.pending.push_back(event("message_stop", json!({})));
        self.done = true;
    }

    fn fail(&mut self, e: UpstreamError) {
        let err = crate::server::openai::chat::counted(e);
        tracing::warn!(error = %err, "upstream failed mid-stream");
        self.pending
            .push_back(event("error", super::error::body(&err)));
        self.done = true;
    }
}

pub fn respond(
    app: AppState,
    running: Running,
    first: TurnEvent,
    meta: MessageMeta,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let blocks = Blocks::new(app.config().reasoning);
    let mut st = StreamState {
        app,
        running,
        meta,
        blocks,
        pending: VecDeque::new(),
        done: false,
    };
    let start = st.meta.message(json!([]), None, 1);
    st.pending
        .push_back(event("message_start", json!({"message": start})));
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
                                .remember(st.app.store(), &st.blocks.text)
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
    let ping = Event::default()
        .event("ping")
        .data(json!({"type": "ping"}).to_string());
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .event(ping),
    )
}
