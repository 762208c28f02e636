//! `POST /v1/messages/count_tokens`: the input tokens a Messages body would count (system,
//! tools and messages), with the same validation (except that `max_tokens` is optional) and the
//! same tokenizer as `usage`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::error::{AnthropicError, AnthropicJson};
use super::request::MessagesRequest;
use crate::server::AppState;

pub async fn count_tokens(
    State(state): State<AppState>,
    AnthropicJson(body): AnthropicJson,
) -> Result<Json<Value>, AnthropicError> {
    let req = MessagesRequest::parse(&body, false)?;
    state.model_for(req.model.as_deref()).await?;
    Ok(Json(json!({"input_tokens": req.chat.estimated_tokens()})))
}
