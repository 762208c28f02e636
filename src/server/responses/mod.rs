//! The OpenAI Responses API: `POST /v1/responses` (streamed and not), what Codex CLI and newer
//! OpenAI SDK code use. It runs through the same relay, tool emulation, conversation memory and
//! accounts as the other APIs; only the wire format differs.
//!
//! # Layout
//! - [`request`]: parse and validate a body (instructions, input items, tools) into a `Chat`;
//! - [`object`]: the `response` object and its output items;
//! - [`events`]: the streamed answer as typed SSE events.
//!
//! `previous_response_id` names a response kept by this proxy (`store`, true by default): its
//! conversation is kept in the conversation store under the response id, for as long as
//! conversations are kept (`CONVERSATION_TTL`). An unknown or expired id is a 400.

pub mod events;
pub mod object;
pub mod request;

use std::time::Instant;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use self::object::{ResponseMeta, new_id};
use self::request::ResponsesRequest;
use crate::conversation::Scope;
use crate::server::AppState;
use crate::server::auth::ClientId;
use crate::server::chat_body::ChatBody;
use crate::server::error::ApiError;
use crate::server::pump::response_key;
use crate::server::turn;

pub async fn create(
    State(state): State<AppState>,
    Extension(client): Extension<ClientId>,
    headers: HeaderMap,
    body: ChatBody,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let earlier = match body.get("previous_response_id").and_then(Value::as_str) {
        Some(id) => earlier_items(&state, id).await?,
        None => Vec::new(),
    };
    let req = ResponsesRequest::parse(&body, earlier)?;
    // The body's bytes are not needed past the parse.
    drop(body);
    let (model, route) = state.route_for(req.model.as_deref()).await?;
    let meta = ResponseMeta {
        id: new_id("resp_"),
        created_at: 0,
        model: model.clone(),
        input_tokens: req.chat.estimated_tokens(),
        namespaces: req.namespaces,
        instructions: req.instructions,
        store: req.store,
        input_items: req.input_items,
        mode: state.config().reasoning,
    }
    .created_now();
    let scope = Scope {
        client: client.0,
        model,
        session: session_of(&headers),
        ..Scope::default()
    };
    let started = turn::start(&state, scope, req.chat, &route, received, req.stream).await?;
    if req.stream {
        return Ok(events::respond(state, started, meta).into_response());
    }
    let (answer, completion) = turn::collect(&state, started).await?;
    let output = meta.output(&answer);
    if meta.store {
        completion
            .remember_response(
                state.store(),
                &response_key(&meta.id),
                meta.transcript(&output),
            )
            .await;
    }
    Ok(axum::Json(meta.object("completed", &output, Some(&answer))).into_response())
}

/// The conversation of a kept response, as input items; a 400 when it is unknown or expired.
async fn earlier_items(
    state: &AppState,
    id: &str,
) -> Result<Vec<Box<serde_json::value::RawValue>>, ApiError> {
    let key = response_key(id);
    let unknown = || {
        ApiError::bad_request(
            format!(
                "`previous_response_id` `{}` is unknown or expired: this proxy keeps responses created with `store` (the default) for CONVERSATION_TTL. Send the whole conversation in `input` instead.",
                id.chars().take(64).collect::<String>()
            ),
            Some("previous_response_id"),
        )
    };
    let record = match state.store().take_conversation(&key).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(unknown()),
        Err(e) => {
            metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
            tracing::warn!(error = %e, "conversation store unavailable while resolving previous_response_id");
            return Err(unknown());
        }
    };
    // Taking is how the store reads; put it back so the id can be named again (a retry, or a
    // second branch from the same response).
    if let Err(e) = state.store().put_conversation(&key, &record).await {
        tracing::warn!(error = %e, "could not keep the response after reading it");
    }
    let items: Vec<Box<serde_json::value::RawValue>> = record
        .transcript
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(unknown)?;
    Ok(items)
}

/// Codex sends its conversation id as the `session_id` header.
fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("session_id")
        .or_else(|| headers.get("x-session-id"))
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_string)
}
