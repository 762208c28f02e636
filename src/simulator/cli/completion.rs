//! `POST /chat/completions` of the CLI door: checks, the request record, faults, then the
//! answer as one `chat.completion` object or as `chat.completion.chunk` events ending
//! `data: [DONE]` (reasoning, content or tool-call deltas, then a chunk with the
//! `finish_reason` and the `usage`).
//!
//! The chunks are built up front (pure, [`chunks`]) and only paced and cut short while
//! streaming, so what a client receives is what the unit tests see.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::reply::{Answer, Reply, answer, completion_tokens, prompt_tokens};
use super::{CLI_MODELS, authorize, openai_error};
use crate::simulator::engine::take_trigger_fault;
use crate::simulator::state::SimState;
use crate::simulator::util::{lock, now_secs, random_alnum};
use crate::simulator::{CliCompletionRecord, thinking_text};

/// The pause before a stream cut by `Faults::ws_drop_after`.
const DROP_PAUSE: Duration = Duration::from_millis(20);

/// Characters per content or reasoning delta.
const CONTENT_CHUNK: usize = 12;
/// Characters per `function.arguments` delta: small, so even short arguments come in pieces.
const ARGS_CHUNK: usize = 6;

/// `text` cut into pieces of at most `n` characters, byte-exact once concatenated.
fn pieces(text: &str, n: usize) -> Vec<&str> {
    let mut bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(n).collect();
    bounds.push(text.len());
    bounds.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

/// What every chunk and the JSON answer share.
struct Meta<'a> {
    id: String,
    created: u64,
    model: &'a str,
}

/// One event of the stream; `delta` marks the reasoning, content and tool-call deltas that
/// `Faults::ws_drop_after` counts.
pub(crate) struct Chunk {
    pub data: String,
    pub delta: bool,
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt + completion})
}

fn finish_reason(reply: &Reply) -> &'static str {
    match reply {
        Reply::Text(_) => "stop",
        Reply::ToolCalls(_) => "tool_calls",
    }
}

/// Every event of a streamed answer, `[DONE]` last.
fn chunks(meta: &Meta<'_>, reply: &Reply, reasoning: Option<&str>, usage: Value) -> Vec<Chunk> {
    let chunk = |delta: Value, finish: Option<&str>, delta_counts: bool| Chunk {
        data: json!({
            "id": meta.id, "object": "chat.completion.chunk", "created": meta.created,
            "model": meta.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
        .to_string(),
        delta: delta_counts,
    };
    let first_content = match reply {
        Reply::Text(_) => json!(""),
        Reply::ToolCalls(_) => Value::Null,
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": first_content}),
        None,
        false,
    )];
    for piece in pieces(reasoning.unwrap_or(""), CONTENT_CHUNK) {
        out.push(chunk(json!({"reasoning_content": piece}), None, true));
    }
    match reply {
        Reply::Text(text) => {
            for piece in pieces(text, CONTENT_CHUNK) {
                out.push(chunk(json!({"content": piece}), None, true));
            }
        }
        Reply::ToolCalls(calls) => {
            for (index, call) in calls.iter().enumerate() {
                out.push(chunk(
                    json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                           "function": {"name": call.name, "arguments": ""}}]}),
                    None,
                    true,
                ));
                for piece in pieces(&call.arguments, ARGS_CHUNK) {
                    out.push(chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        None,
                        true,
                    ));
                }
            }
        }
    }
    let mut last = chunk(json!({}), Some(finish_reason(reply)), false);
    let mut v: Value = serde_json::from_str(&last.data).unwrap_or(Value::Null);
    v["usage"] = usage;
    last.data = v.to_string();
    out.push(last);
    out.push(Chunk {
        data: "[DONE]".to_owned(),
        delta: false,
    });
    out
}

/// The non-streamed `chat.completion`.
fn completion(meta: &Meta<'_>, reply: &Reply, reasoning: Option<&str>, usage: Value) -> Value {
    let mut message = match reply {
        Reply::Text(text) => json!({"role": "assistant", "content": text}),
        Reply::ToolCalls(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            json!({"role": "assistant", "content": null, "tool_calls": calls})
        }
    };
    if let Some(r) = reasoning {
        message["reasoning_content"] = json!(r);
    }
    json!({
        "id": meta.id, "object": "chat.completion", "created": meta.created, "model": meta.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(reply)}],
        "usage": usage,
    })
}

/// Keeps the request as the simulator received it, with the headers a test checks.
fn record(st: &SimState, user: &str, headers: &HeaderMap, body: &Value) {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    lock(&st.stats).cli_completions.push(CliCompletionRecord {
        user_id: user.to_owned(),
        session_id: get("x-session-id"),
        session_affinity: get("x-session-affinity"),
        user_agent: get("user-agent"),
        body: body.clone(),
    });
}

fn bad_request(message: &str) -> Response {
    openai_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_request",
        message,
    )
}

/// The OpenAI error of an armed `trigger_status` fault.
fn fault_response(code: StatusCode) -> Response {
    let (kind, name) = match code.as_u16() {
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        400..=499 => ("invalid_request_error", "simulated"),
        _ => ("server_error", "simulated"),
    };
    openai_error(code, kind, name, "Simulated upstream failure")
}

/// `POST /chat/completions`.
pub(crate) async fn chat_completions(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match authorize(&st, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let Some(body) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
    else {
        return bad_request("The body must be a JSON object.");
    };
    record(&st, &user, &headers, &body);
    if let Some(code) = take_trigger_fault(&st, &user) {
        return fault_response(code);
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    let Some((model, _)) = CLI_MODELS.iter().find(|(id, _)| *id == model) else {
        return openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            &format!("The model `{model}` does not exist or you do not have access to it."),
        );
    };
    if body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return bad_request("messages must be a non-empty array.");
    }
    let faults = lock(&st.faults).clone();
    let Answer { reply, turn } = answer(&body, st.cfg.reply_words);
    let reasoning = faults.thinking.then(|| thinking_text(turn));
    let usage = usage(
        prompt_tokens(&body),
        completion_tokens(&reply, reasoning.as_deref()),
    );
    let meta = Meta {
        id: format!("chatcmpl-{}", random_alnum(24)),
        created: now_secs(),
        model,
    };
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    let cancel = st.cancel.clone();
    if !stream {
        if faults.silent {
            cancel.cancelled().await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let delay = st.cfg.frame_delay + Duration::from_millis(faults.slow_frame_ms);
        tokio::time::sleep(delay).await;
        return Json(completion(&meta, &reply, reasoning.as_deref(), usage)).into_response();
    }
    let delay = st.cfg.frame_delay + Duration::from_millis(faults.slow_frame_ms);
    // Each event with the pause before it.
    let mut events: Vec<(Duration, Result<Event, std::io::Error>)> = Vec::new();
    let mut deltas = 0;
    for c in chunks(&meta, &reply, reasoning.as_deref(), usage) {
        events.push((delay, Ok(Event::default().data(c.data))));
        deltas += u32::from(c.delta);
        if faults.ws_drop_after.is_some_and(|n| c.delta && deltas >= n) {
            // An error ends the body without its last chunk: the client sees a cut connection.
            // The pause lets the server flush the head and the chunks so far first, as a
            // connection that dies mid-stream would have.
            let cut = Err(std::io::Error::other("simulated dropped stream"));
            events.push((delay.max(DROP_PAUSE), cut));
            break;
        }
    }
    let body = if faults.silent {
        futures_util::stream::pending().boxed()
    } else {
        futures_util::stream::iter(events)
            .then(|(pause, event)| async move {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                event
            })
            .boxed()
    };
    Sse::new(body.take_until(cancel.cancelled_owned())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::cli::reply::ToolCall;

    fn meta() -> Meta<'static> {
        Meta {
            id: "chatcmpl-x".into(),
            created: 1,
            model: "gpt-5.4",
        }
    }

    fn parsed(chunks: &[Chunk]) -> Vec<Value> {
        chunks
            .iter()
            .filter(|c| c.data != "[DONE]")
            .map(|c| serde_json::from_str(&c.data).unwrap_or(Value::Null))
            .collect()
    }

    #[test]
    fn text_streams_in_pieces_with_reasoning_first_and_usage_last() {
        let reply = Reply::Text("Hello there, this is a longer answer.".into());
        let all = chunks(&meta(), &reply, Some("Thinking hard."), usage(3, 9));
        assert_eq!(all.last().map(|c| c.data.as_str()), Some("[DONE]"));
        let v = parsed(&all);
        assert_eq!(v[0]["choices"][0]["delta"]["role"], "assistant");
        let field = |name: &str| -> String {
            v.iter()
                .filter_map(|c| c["choices"][0]["delta"][name].as_str())
                .collect()
        };
        assert_eq!(field("content"), "Hello there, this is a longer answer.");
        assert_eq!(field("reasoning_content"), "Thinking hard.");
        let first_content = v.iter().position(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        });
        let last_reasoning = v
            .iter()
            .rposition(|c| c["choices"][0]["delta"]["reasoning_content"].is_string());
        assert!(last_reasoning < first_content);
        let last = v.last().cloned().unwrap_or_default();
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert_eq!(last["usage"]["total_tokens"], 12);
        assert!(v.iter().all(|c| c["object"] == "chat.completion.chunk"));
    }

    #[test]
    fn tool_calls_stream_id_and_name_then_argument_pieces() {
        let reply = Reply::ToolCalls(vec![ToolCall {
            id: "call_1".into(),
            name: "Read".into(),
            arguments: "{\"file_path\": \"/tmp/é\"}".into(),
        }]);
        let v = parsed(&chunks(&meta(), &reply, None, usage(1, 1)));
        assert!(v[0]["choices"][0]["delta"]["content"].is_null());
        let calls: Vec<&Value> = v
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
            .collect();
        assert_eq!(calls[0]["id"], "call_1");
        assert_eq!(calls[0]["function"]["name"], "Read");
        assert!(calls.len() > 3);
        let args: String = calls
            .iter()
            .filter_map(|c| c["function"]["arguments"].as_str())
            .collect();
        assert_eq!(args, "{\"file_path\": \"/tmp/é\"}");
        assert_eq!(
            v.last().map(|c| c["choices"][0]["finish_reason"].clone()),
            Some(json!("tool_calls"))
        );
        let whole = completion(&meta(), &reply, None, usage(1, 1));
        assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            whole["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"file_path\": \"/tmp/é\"}"
        );
    }
}
