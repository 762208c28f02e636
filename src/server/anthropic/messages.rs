//! `POST /v1/messages`.
//!
//! Like every API, it starts the turn through [`crate::server::turn`], so a turn that fails
//! before producing anything gets a proper HTTP error in Anthropic's shape instead of a 200
//! stream that breaks at once; after that, errors travel inside the stream.

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::{AnthropicError, AnthropicJson};
use super::events;
use super::meta::{MessageMeta, output_tokens};
use super::request::MessagesRequest;
use crate::config::ReasoningMode;
use crate::conversation::Scope;
use crate::server::AppState;
use crate::server::answer::Answer;
use crate::server::auth::ClientId;
use crate::server::turn;

/// The client's session id (Claude Code sends `X-Claude-Code-Session-Id`): conversation memory
/// is scoped to it, so side requests of one session never continue another's chat.
pub fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-claude-code-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_string)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(client): Extension<ClientId>,
    headers: HeaderMap,
    AnthropicJson(body): AnthropicJson,
) -> Result<Response, AnthropicError> {
    let received = std::time::Instant::now();
    let req = MessagesRequest::parse(&body, true)?;
    // The body's bytes are not needed past the parse.
    drop(body);
    let (model, route) = state.route_for(req.model.as_deref()).await?;
    let meta = MessageMeta::new(&model, req.chat.estimated_tokens());
    let scope = Scope {
        client: client.0,
        model,
        session: session_of(&headers),
        ..Scope::default()
    };
    let started = turn::start(&state, scope, req.chat, &route, received, req.stream).await?;
    if req.stream {
        Ok(events::respond(state, started, meta).into_response())
    } else {
        let (answer, _) = turn::collect(&state, started).await?;
        Ok(axum::Json(message(&meta, &answer, state.config().reasoning)).into_response())
    }
}

/// The `message` object of a whole answer.
fn message(meta: &MessageMeta, answer: &Answer, mode: ReasoningMode) -> Value {
    let mut content = Vec::with_capacity(2 + answer.calls.len());
    if mode != ReasoningMode::Hide && !answer.reasoning.is_empty() {
        content.push(json!({"type": "thinking", "thinking": answer.reasoning, "signature": ""}));
    }
    if !answer.text.is_empty() || answer.calls.is_empty() {
        content.push(json!({"type": "text", "text": answer.text}));
    }
    for (i, c) in answer.calls.iter().enumerate() {
        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name,
            "input": answer.arguments_json(i)}));
    }
    meta.message(
        Value::Array(content),
        Some(answer.finish_reason().anthropic()),
        output_tokens(answer),
    )
}
