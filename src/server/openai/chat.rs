//! `POST /v1/chat/completions`.
//!
//! The turn starts through [`crate::server::turn`] (which waits for the upstream's first event,
//! so a turn that fails before producing anything gets a proper HTTP error); then the answer is
//! streamed as chunks ([`super::sse`]) or returned as one `chat.completion` object.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::request::ChatRequest;
use super::sse::{self, ChunkMeta};
use super::usage;
use crate::config::ReasoningMode;
use crate::conversation::Scope;
use crate::server::AppState;
use crate::server::answer::Answer;
use crate::server::auth::ClientId;
use crate::server::chat_body::ChatBody;
use crate::server::error::ApiError;
use crate::server::turn;

pub async fn completions(
    State(state): State<AppState>,
    Extension(client): Extension<ClientId>,
    body: ChatBody,
) -> Result<Response, ApiError> {
    let received = std::time::Instant::now();
    let mut req = ChatRequest::parse(&body)?;
    let (model, route) = state.route_for(req.model.as_deref()).await?;
    // The CLI door forwards the client's own body, every field intact: its bytes are kept
    // only when that door may serve the model (they are parsed when the turn is sent).
    if route.cli_model.is_some() {
        req.chat.passthrough = Some(body.bytes());
    }
    drop(body);
    let prompt_tokens = req.chat.estimated_tokens();
    let scope = Scope {
        client: client.0,
        model: model.clone(),
        ..Scope::default()
    };
    let started = turn::start(&state, scope, req.chat, &route, received, req.stream).await?;
    let meta = ChunkMeta::new(&model, prompt_tokens, req.include_usage);
    if req.stream {
        Ok(sse::respond(state, started, meta).into_response())
    } else {
        let (answer, _) = turn::collect(&state, started).await?;
        Ok(axum::Json(completion(&meta, &answer, state.config().reasoning)).into_response())
    }
}

/// The `chat.completion` object of a whole answer.
fn completion(meta: &ChunkMeta, answer: &Answer, mode: ReasoningMode) -> Value {
    let content = match mode {
        ReasoningMode::ThinkTags if !answer.reasoning.is_empty() => {
            let sep = if answer.text.is_empty() { "" } else { "\n\n" };
            format!("<think>{}</think>{sep}{}", answer.reasoning, answer.text)
        }
        _ => answer.text.clone(),
    };
    let has_calls = !answer.calls.is_empty();
    let mut message = json!({
        "role": "assistant",
        "content": if content.is_empty() && has_calls { Value::Null } else { Value::String(content) },
    });
    if mode == ReasoningMode::Field && !answer.reasoning.is_empty() {
        message["reasoning_content"] = Value::String(answer.reasoning.clone());
    }
    if has_calls {
        message["tool_calls"] = answer
            .calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    let (prompt, completion) = usage::counts(meta.prompt_tokens, answer);
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": answer.finish_reason().openai()}],
        "usage": usage::usage_json(prompt, completion),
    })
}
