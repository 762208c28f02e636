//! `POST /v1/messages`.
//!
//! Like the OpenAI handler, it waits for the upstream's first event before answering, so a turn
//! that fails before producing anything gets a proper HTTP error in Anthropic's shape instead
//! of a 200 stream that breaks at once; after that, errors travel inside the stream.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::blocks::Blocks;
use super::error::{AnthropicError, AnthropicJson};
use super::events;
use super::request::MessagesRequest;
use crate::conversation::Scope;
use crate::relay::Running;
use crate::server::AppState;
use crate::server::auth::ClientId;
use crate::server::error::ApiError;
use crate::server::openai::chat::counted;
use crate::tokens;
use crate::upstream::{TurnEvent, UpstreamError};

/// What every part of one answer shares.
pub struct MessageMeta {
    pub id: String,
    pub model: String,
    pub input_tokens: u64,
}

impl MessageMeta {
    pub fn new(model: &str, input_tokens: u64) -> Self {
        MessageMeta {
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            model: model.to_string(),
            input_tokens,
        }
    }

    /// The `message` object with the given content, stop reason and output tokens.
    pub fn message(&self, content: Value, stop_reason: Option<&str>, output_tokens: u64) -> Value {
        json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": output_tokens},
        })
    }
}

/// Output tokens: everything the client received (thinking and text).
pub fn output_tokens(blocks: &Blocks) -> u64 {
    tokens::count(&blocks.thinking) + tokens::count(&blocks.text)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(client): Extension<ClientId>,
    AnthropicJson(body): AnthropicJson,
) -> Result<Response, AnthropicError> {
    let received = std::time::Instant::now();
    let req = MessagesRequest::parse(&body, true)?;
    let model = state.model_for(req.model.as_deref()).await?;
    let images = crate::catalog::prepare_images(&state, &model, req.images).await?;
    let meta = MessageMeta::new(&model, tokens::count_messages(&req.messages));
    let scope = Scope {
        client: client.0,
        model,
    };
    let mut running = state
        .relay()
        .start_with_images(scope, req.messages, images)
        .await
        .map_err(ApiError::from)?;
    let first = match running.turn.next().await {
        Some(Ok(ev)) => ev,
        Some(Err(e)) => return Err(counted(e).into()),
        None => {
            let e = UpstreamError::StreamClosed("the stream ended before any answer".into());
            return Err(counted(e).into());
        }
    };
    metrics::histogram!(crate::metrics::TTFB_SECONDS, "stream" => if req.stream { "true" } else { "false" })
        .record(received.elapsed().as_secs_f64());
    if req.stream {
        Ok(events::respond(state, running, first, meta).into_response())
    } else {
        Ok(collect(state, running, first, meta).await?)
    }
}

/// Runs the turn to its end and answers with one `message` object.
async fn collect(
    state: AppState,
    mut running: Running,
    first: TurnEvent,
    meta: MessageMeta,
) -> Result<Response, ApiError> {
    let mut blocks = Blocks::new(state.config().reasoning);
    let mut ev = first;
    loop {
        blocks.push(&ev);
        if matches!(ev, TurnEvent::Finished { .. }) {
            break;
        }
        ev = match running.turn.next().await {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => return Err(counted(e)),
            None => {
                return Err(counted(UpstreamError::StreamClosed(
                    "the stream ended before the turn finished".into(),
                )));
            }
        };
    }
    running
        .completion
        .remember(state.store(), &blocks.text)
        .await;
    let mut content = Vec::with_capacity(2);
    if !blocks.thinking.is_empty() {
        content.push(json!({"type": "thinking", "thinking": blocks.thinking, "signature": ""}));
    }
    content.push(json!({"type": "text", "text": blocks.text}));
    let message = meta.message(
        Value::Array(content),
        Some("end_turn"),
        output_tokens(&blocks),
    );
    Ok(axum::Json(message).into_response())
}
