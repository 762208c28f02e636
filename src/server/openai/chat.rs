//! `POST /v1/chat/completions`.
//!
//! The handler waits for the upstream's first event before answering, so a turn that fails
//! before producing anything gets a proper HTTP error (a 502/503 JSON object) instead of a
//! 200 stream that breaks at once. After that, errors travel inside the stream.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::request::ChatRequest;
use super::shape::Shaper;
use super::sse::{self, ChunkMeta};
use super::usage;
use crate::conversation::Scope;
use crate::server::AppState;
use crate::server::auth::ClientId;
use crate::server::error::ApiError;
use crate::server::extract::JsonBody;
use crate::upstream::{TurnEvent, UpstreamError};

pub async fn completions(
    State(state): State<AppState>,
    Extension(client): Extension<ClientId>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let received = std::time::Instant::now();
    let req = ChatRequest::parse(&body)?;
    let model = state.model_for(req.model.as_deref()).await?;
    let images = crate::catalog::prepare_images(&state, &model, req.images).await?;
    let prompt_tokens = usage::estimate_messages(&req.messages);
    let scope = Scope {
        client: client.0,
        model: model.clone(),
    };
    let mut running = state
        .relay()
        .start_with_images(scope, req.messages, images)
        .await?;
    let first = match running.turn.next().await {
        Some(Ok(ev)) => ev,
        Some(Err(e)) => return Err(counted(e)),
        None => {
            let e = UpstreamError::StreamClosed("the stream ended before any answer".into());
            return Err(counted(e));
        }
    };
    metrics::histogram!(crate::metrics::TTFB_SECONDS, "stream" => if req.stream { "true" } else { "false" })
        .record(received.elapsed().as_secs_f64());
    crate::server::admin_ui::stats::ttfb(received.elapsed());
    let meta = ChunkMeta::new(&model, prompt_tokens, req.include_usage);
    if req.stream {
        Ok(sse::respond(state, running, first, meta).into_response())
    } else {
        collect(state, running, first, meta).await
    }
}

/// Runs the turn to its end and answers with one `chat.completion` object.
async fn collect(
    state: AppState,
    mut running: crate::relay::Running,
    first: TurnEvent,
    meta: ChunkMeta,
) -> Result<Response, ApiError> {
    let mut shaper = Shaper::new(state.config().reasoning);
    let (mut reasoning, mut content) = (String::new(), String::new());
    let mut ev = first;
    loop {
        let finished = matches!(ev, TurnEvent::Finished { .. });
        if let Some(p) = shaper.shape(&ev) {
            reasoning.push_str(p.reasoning.as_deref().unwrap_or(""));
            content.push_str(p.content.as_deref().unwrap_or(""));
        }
        if finished {
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
        .remember(state.store(), &shaper.answer)
        .await;
    let mut message = json!({"role": "assistant", "content": content});
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    let completion_tokens = shaper.completion_tokens();
    Ok(axum::Json(json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage::usage_json(meta.prompt_tokens, completion_tokens),
    }))
    .into_response())
}

/// Counts an upstream failure and turns it into the HTTP error.
pub fn counted(e: UpstreamError) -> ApiError {
    crate::metrics::upstream_error(e.kind());
    e.into()
}
