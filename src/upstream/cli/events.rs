//! OpenAI Chat Completions answers into [`TurnEvent`]s: [`ChunkReader`] for a stream of
//! `chat.completion.chunk`s (fed one event's data at a time), [`completion_events`] for one
//! whole `chat.completion`. Pure.
//!
//! Read liberally, since the door's exact shapes are unknown (protocol notes §10 \[G\]):
//! - text from `delta.content` (a string or text parts) and `delta.refusal`;
//! - reasoning from `delta.reasoning_content`, else `delta.reasoning`, else the text of
//!   `delta.reasoning_details` (gateways send the same text in several of them at once);
//! - tool calls from `delta.tool_calls[]` pieces keyed by `index`: a call starts once its `id`
//!   and `name` are known (arguments that came earlier are held until then), and every call
//!   ends when the answer does; the legacy `delta.function_call` is one more call;
//! - `finish_reason` → [`TurnEvent::Stopped`], `usage` (in any chunk, also the final one with no
//!   choices) → [`TurnEvent::Usage`];
//! - `[DONE]`, or the end of the body after a finish, → [`TurnEvent::Finished`]. The end of the
//!   body without either is a broken stream.
//!
//! Only the first choice is followed (we never ask for `n > 1`). Anything unknown is logged
//! once, at debug level.

use serde_json::Value;

use super::chat::CALL_CHAT;
use super::refusal::mid_stream;
use crate::upstream::answer::log_unknown_once;
use crate::upstream::{FinishReason, TurnEvent, UpstreamError, Usage};

/// Delta fields we read or knowingly ignore.
const KNOWN_DELTA: &[&str] = &[
    "role",
    "content",
    "refusal",
    "reasoning_content",
    "reasoning",
    "reasoning_details",
    "tool_calls",
    "function_call",
    "annotations",
];

/// One tool call as its pieces arrive.
#[derive(Debug, Default)]
struct Call {
    /// The upstream's `index` (the key of later pieces).
    key: u64,
    id: Option<String>,
    name: String,
    /// Our index once started (the order calls started in).
    started: Option<usize>,
    /// Arguments received before the start.
    held: String,
}

/// Follows one streamed answer.
#[derive(Debug, Default)]
pub struct ChunkReader {
    calls: Vec<Call>,
    /// Calls started so far (the next one's index).
    started: usize,
    /// A `finish_reason` was seen: the answer is complete, only usage and `[DONE]` may follow.
    stopped: bool,
    /// `Finished` was emitted: nothing more is read.
    finished: bool,
}

impl ChunkReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the answer is over (`Finished` was returned).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// One event's data: a chunk's JSON, or `[DONE]`.
    pub fn data(&mut self, data: &str) -> Result<Vec<TurnEvent>, UpstreamError> {
        let mut out = Vec::new();
        if self.finished {
            return Ok(out);
        }
        let data = data.trim();
        if data == "[DONE]" {
            self.close_calls(&mut out);
            self.finished = true;
            out.push(TurnEvent::Finished { cancelled: false });
            return Ok(out);
        }
        if data.is_empty() {
            return Ok(out);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|_| UpstreamError::Protocol {
            call: CALL_CHAT,
            detail: format!(
                "a stream event is not JSON: {}",
                crate::upstream::answer::truncate(data)
            ),
        })?;
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(mid_stream(CALL_CHAT, error));
        }
        if let Some(choice) = first_choice(&chunk) {
            let delta = choice.get("delta").or_else(|| choice.get("message"));
            if let Some(delta) = delta.filter(|_| !self.stopped) {
                self.delta(delta, &mut out);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.close_calls(&mut out);
                if !self.stopped {
                    self.stopped = true;
                    out.push(TurnEvent::Stopped(FinishReason::from_openai(reason)));
                }
            }
        }
        if let Some(usage) = chunk.get("usage").and_then(usage) {
            out.push(TurnEvent::Usage(usage));
        }
        Ok(out)
    }

    /// The body ended. After a finish that is the end of the answer; before one, the stream
    /// broke off.
    pub fn end(&mut self) -> Result<Vec<TurnEvent>, UpstreamError> {
        let mut out = Vec::new();
        if self.finished {
            return Ok(out);
        }
        if !self.stopped {
            return Err(UpstreamError::StreamClosed(
                "the CLI door's answer ended without a finish_reason or [DONE]".to_string(),
            ));
        }
        self.finished = true;
        out.push(TurnEvent::Finished { cancelled: false });
        Ok(out)
    }

    fn delta(&mut self, delta: &Value, out: &mut Vec<TurnEvent>) {
        if let Some(map) = delta.as_object() {
            for key in map.keys().filter(|k| !KNOWN_DELTA.contains(&k.as_str())) {
                log_unknown_once(&format!("cli delta field {key}"), || {
                    format!("a chunk's delta has the field `{key}`")
                });
            }
        }
        if let Some(text) = reasoning(delta) {
            out.push(TurnEvent::Reasoning(text));
        }
        for field in ["content", "refusal"] {
            let text = delta.get(field).map(text_of).unwrap_or_default();
            if !text.is_empty() {
                out.push(TurnEvent::Content(text));
            }
        }
        for piece in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = piece.get("index").and_then(Value::as_u64).unwrap_or(0);
            let function = piece.get("function");
            self.piece(
                key,
                piece.get("id").and_then(Value::as_str),
                function.and_then(|f| f.get("name")).and_then(Value::as_str),
                function.and_then(|f| f.get("arguments")),
                out,
            );
        }
        if let Some(f) = delta.get("function_call").filter(|f| f.is_object()) {
            let name = f.get("name").and_then(Value::as_str);
            self.piece(u64::MAX, None, name, f.get("arguments"), out);
        }
    }

    /// One piece of the call keyed `key`.
    fn piece(
        &mut self,
        key: u64,
        id: Option<&str>,
        name: Option<&str>,
        arguments: Option<&Value>,
        out: &mut Vec<TurnEvent>,
    ) {
        let slot = match self.calls.iter().position(|c| c.key == key) {
            Some(i) => i,
            None => {
                self.calls.push(Call {
                    key,
                    ..Call::default()
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[slot];
        if let Some(id) = id.filter(|s| !s.is_empty())
            && call.id.is_none()
        {
            call.id = Some(id.to_string());
        }
        if let Some(name) = name.filter(|s| !s.is_empty()) {
            if call.started.is_none() {
                call.name.push_str(name);
            } else if name != call.name {
                log_unknown_once("cli tool call name after start", || {
                    "a tool call's name grew after the call had started".to_string()
                });
            }
        }
        let args = arguments.map(arguments_text).unwrap_or_default();
        match call.started {
            Some(index) if !args.is_empty() => {
                out.push(TurnEvent::ToolCallArgs { index, delta: args })
            }
            Some(_) => {}
            None => {
                call.held.push_str(&args);
                if call.id.is_some() && !call.name.is_empty() {
                    self.start(slot, out);
                }
            }
        }
    }

    /// Starts call `slot` (an id is made up if the upstream never sent one) and sends what
    /// arguments it held.
    fn start(&mut self, slot: usize, out: &mut Vec<TurnEvent>) {
        let index = self.started;
        let call = &mut self.calls[slot];
        let id = call
            .id
            .get_or_insert_with(|| format!("call_{}", uuid::Uuid::new_v4().simple()))
            .clone();
        call.started = Some(index);
        self.started += 1;
        out.push(TurnEvent::ToolCallStart {
            index,
            id,
            name: call.name.clone(),
        });
        let held = std::mem::take(&mut call.held);
        if !held.is_empty() {
            out.push(TurnEvent::ToolCallArgs { index, delta: held });
        }
    }

    /// The answer is over: calls still waiting for an id start now, nameless ones are dropped,
    /// and every started call ends.
    fn close_calls(&mut self, out: &mut Vec<TurnEvent>) {
        for slot in 0..self.calls.len() {
            if self.calls[slot].started.is_none() {
                if self.calls[slot].name.is_empty() {
                    log_unknown_once("cli nameless tool call", || {
                        "a tool call without a name was dropped".to_string()
                    });
                    continue;
                }
                self.start(slot, out);
            }
        }
        for call in self.calls.drain(..) {
            if let Some(index) = call.started {
                out.push(TurnEvent::ToolCallEnd { index });
            }
        }
    }
}

/// The choice we follow: index 0, or the first one listed.
fn first_choice(chunk: &Value) -> Option<&Value> {
    let choices = chunk.get("choices")?.as_array()?;
    if choices.len() > 1 {
        log_unknown_once("cli several choices", || {
            "an answer has several choices; only the first is read".to_string()
        });
    }
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
        .or_else(|| choices.first())
}

/// A content value's text: a string, or the `text` of its parts.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Arguments as text: a JSON string as is, anything else (an object some gateways send)
/// serialised.
fn arguments_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The reasoning text of a delta or message, from the first field that has some.
fn reasoning(v: &Value) -> Option<String> {
    let plain = ["reasoning_content", "reasoning"]
        .iter()
        .filter_map(|k| v.get(*k))
        .map(text_of)
        .find(|t| !t.is_empty());
    plain
        .or_else(|| {
            let details = v.get("reasoning_details")?.as_array()?;
            let text: String = details
                .iter()
                .filter_map(|d| {
                    d.get("text")
                        .or_else(|| d.get("summary"))
                        .and_then(Value::as_str)
                })
                .collect();
            Some(text)
        })
        .filter(|t| !t.is_empty())
}

/// `usage`, with Anthropic-style names accepted too; `None` for null or an empty object.
fn usage(v: &Value) -> Option<Usage> {
    let n = |keys: &[&str]| keys.iter().find_map(|k| v.get(*k)?.as_u64());
    let prompt = n(&["prompt_tokens", "input_tokens"]);
    let completion = n(&["completion_tokens", "output_tokens"]);
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    Some(Usage {
        prompt_tokens: prompt.unwrap_or(0),
        completion_tokens: completion.unwrap_or(0),
    })
}

/// The events of a whole `chat.completion` (the door ignored `stream`, or was asked not to).
pub fn completion_events(body: &Value) -> Result<Vec<TurnEvent>, UpstreamError> {
    if let Some(error) = body.get("error").filter(|e| !e.is_null()) {
        return Err(mid_stream(CALL_CHAT, error));
    }
    let choice = first_choice(body).ok_or_else(|| UpstreamError::Protocol {
        call: CALL_CHAT,
        detail: "the answer has no choices".to_string(),
    })?;
    let message = choice.get("message").or_else(|| choice.get("delta"));
    let mut reader = ChunkReader::new();
    let mut out = Vec::new();
    if let Some(message) = message {
        // Tool calls come whole; the chunk reader takes them as one piece each, in order.
        let mut message = message.clone();
        if let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) {
            for (i, call) in calls.iter_mut().enumerate() {
                if call.get("index").is_none() {
                    call["index"] = Value::from(i);
                }
            }
        }
        reader.delta(&message, &mut out);
    }
    reader.close_calls(&mut out);
    if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
        out.push(TurnEvent::Stopped(FinishReason::from_openai(reason)));
    }
    if let Some(u) = body.get("usage").and_then(usage) {
        out.push(TurnEvent::Usage(u));
    }
    out.push(TurnEvent::Finished { cancelled: false });
    Ok(out)
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
