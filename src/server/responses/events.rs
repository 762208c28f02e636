//! The streamed answer: the Responses API's typed SSE events.
//!
//! Order: `response.created`, `response.in_progress`, then per output item
//! `response.output_item.added`, its parts and deltas (`response.reasoning_summary_text.delta`,
//! `response.output_text.delta`, `response.function_call_arguments.delta`), their `.done`
//! events and `response.output_item.done`; at the end `response.completed` with the whole
//! response. A failure after the first byte becomes `response.failed` with the error. Every
//! event carries its `type` and a `sequence_number`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Value, json};

use super::object::{ResponseMeta, message_item, new_id, reasoning_item};
use crate::config::ReasoningMode;
use crate::server::AppState;
use crate::server::answer::Answer;
use crate::server::pump::{ApiEvents, pump};
use crate::server::turn::Started;
use crate::upstream::{TurnEvent, UpstreamError};

/// The output item being streamed.
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        args: String,
    },
}

struct ResponseEvents {
    meta: ResponseMeta,
    seq: u64,
    open: Option<Open>,
    /// Finished output items, in order.
    output: Vec<Value>,
}

impl ResponseEvents {
    fn event(&mut self, kind: &'static str, mut data: Value, out: &mut VecDeque<Event>) {
        data["type"] = Value::String(kind.to_string());
        data["sequence_number"] = Value::from(self.seq);
        self.seq += 1;
        out.push_back(Event::default().event(kind).data(data.to_string()));
    }

    fn index(&self) -> usize {
        self.output.len()
    }

    /// Opens the item `open` (closing the one before), announcing it.
    fn start(&mut self, open: Open, out: &mut VecDeque<Event>) {
        self.close(out);
        let i = self.index();
        match &open {
            Open::Reasoning { id, .. } => {
                let item = json!({"id": id, "type": "reasoning", "summary": []});
                self.event(
                    "response.output_item.added",
                    json!({"output_index": i, "item": item}),
                    out,
                );
                let part = json!({"type": "summary_text", "text": ""});
                let data =
                    json!({"item_id": id, "output_index": i, "summary_index": 0, "part": part});
                self.event("response.reasoning_summary_part.added", data, out);
            }
            Open::Message { id, .. } => {
                let item = json!({"id": id, "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []});
                self.event(
                    "response.output_item.added",
                    json!({"output_index": i, "item": item}),
                    out,
                );
                let part = json!({"type": "output_text", "text": "", "annotations": []});
                let data =
                    json!({"item_id": id, "output_index": i, "content_index": 0, "part": part});
                self.event("response.content_part.added", data, out);
            }
            Open::Call {
                id, call_id, name, ..
            } => {
                let item = self
                    .meta
                    .function_call(id, call_id, name, "", "in_progress");
                self.event(
                    "response.output_item.added",
                    json!({"output_index": i, "item": item}),
                    out,
                );
            }
        }
        self.open = Some(open);
    }

    /// Closes the open item with its `.done` events.
    fn close(&mut self, out: &mut VecDeque<Event>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let i = self.index();
        let item = match open {
            Open::Reasoning { id, text } => {
                let data =
                    json!({"item_id": id, "output_index": i, "summary_index": 0, "text": text});
                self.event("response.reasoning_summary_text.done", data, out);
                let part = json!({"type": "summary_text", "text": text});
                let data =
                    json!({"item_id": id, "output_index": i, "summary_index": 0, "part": part});
                self.event("response.reasoning_summary_part.done", data, out);
                reasoning_item(&id, &text)
            }
            Open::Message { id, text } => {
                let data =
                    json!({"item_id": id, "output_index": i, "content_index": 0, "text": text});
                self.event("response.output_text.done", data, out);
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                let data =
                    json!({"item_id": id, "output_index": i, "content_index": 0, "part": part});
                self.event("response.content_part.done", data, out);
                message_item(&id, &text, "completed")
            }
            Open::Call {
                id,
                call_id,
                name,
                args,
            } => {
                let data = json!({"item_id": id, "output_index": i, "arguments": args});
                self.event("response.function_call_arguments.done", data, out);
                self.meta
                    .function_call(&id, &call_id, &name, &args, "completed")
            }
        };
        self.event(
            "response.output_item.done",
            json!({"output_index": i, "item": item}),
            out,
        );
        self.output.push(item);
    }
}

impl ApiEvents for ResponseEvents {
    fn push_event(&mut self, ev: &TurnEvent, _answer: &Answer, out: &mut VecDeque<Event>) {
        match ev {
            TurnEvent::Reasoning(t) if self.meta.mode != ReasoningMode::Hide && !t.is_empty() => {
                if !matches!(self.open, Some(Open::Reasoning { .. })) {
                    let open = Open::Reasoning {
                        id: new_id("rs_"),
                        text: String::new(),
                    };
                    self.start(open, out);
                }
                let i = self.index();
                if let Some(Open::Reasoning { id, text }) = self.open.as_mut() {
                    text.push_str(t);
                    let data =
                        json!({"item_id": id, "output_index": i, "summary_index": 0, "delta": t});
                    self.event("response.reasoning_summary_text.delta", data, out);
                }
            }
            TurnEvent::Content(t) if !t.is_empty() => {
                if !matches!(self.open, Some(Open::Message { .. })) {
                    let open = Open::Message {
                        id: new_id("msg_"),
                        text: String::new(),
                    };
                    self.start(open, out);
                }
                let i = self.index();
                if let Some(Open::Message { id, text }) = self.open.as_mut() {
                    text.push_str(t);
                    let data =
                        json!({"item_id": id, "output_index": i, "content_index": 0, "delta": t});
                    self.event("response.output_text.delta", data, out);
                }
            }
            TurnEvent::ToolCallStart { id, name, .. } => {
                let open = Open::Call {
                    id: new_id("fc_"),
                    call_id: id.clone(),
                    name: name.clone(),
                    args: String::new(),
                };
                self.start(open, out);
            }
            TurnEvent::ToolCallArgs { delta, .. } if !delta.is_empty() => {
                let i = self.index();
                if let Some(Open::Call { id, args, .. }) = self.open.as_mut() {
                    args.push_str(delta);
                    let data = json!({"item_id": id, "output_index": i, "delta": delta});
                    self.event("response.function_call_arguments.delta", data, out);
                }
            }
            TurnEvent::ToolCallEnd { .. } => self.close(out),
            _ => {}
        }
    }

    fn finish(&mut self, answer: &Answer, out: &mut VecDeque<Event>) {
        self.close(out);
        if self.output.is_empty() {
            // An empty answer still has its (empty) message.
            self.start(
                Open::Message {
                    id: new_id("msg_"),
                    text: String::new(),
                },
                out,
            );
            self.close(out);
        }
        let response = self.meta.object("completed", &self.output, Some(answer));
        self.event("response.completed", json!({"response": response}), out);
    }

    fn fail(&mut self, e: UpstreamError, _answer: &Answer, out: &mut VecDeque<Event>) {
        let err = crate::server::turn::counted(e);
        tracing::warn!(error = %err, "upstream failed mid-stream");
        let mut response = self.meta.object("failed", &self.output, None);
        let body = err.to_json();
        response["error"] = json!({
            "code": body["error"]["code"].as_str().unwrap_or("upstream_error"),
            "message": body["error"]["message"],
        });
        self.event("response.failed", json!({"response": response}), out);
    }

    fn keep(&self, _answer: &Answer) -> Option<(String, String)> {
        self.meta
            .store
            .then(|| (self.meta.id.clone(), self.meta.transcript(&self.output)))
    }
}

pub fn respond(
    app: AppState,
    started: Started,
    meta: ResponseMeta,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut events = ResponseEvents {
        meta,
        seq: 0,
        open: None,
        output: Vec::new(),
    };
    let mut opening = VecDeque::new();
    let created = events.meta.object("in_progress", &[], None);
    events.event(
        "response.created",
        json!({"response": created.clone()}),
        &mut opening,
    );
    events.event(
        "response.in_progress",
        json!({"response": created}),
        &mut opening,
    );
    let stream = pump(app, started, events, opening.into());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
