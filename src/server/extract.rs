//! A JSON body extractor whose rejections use our error shape: malformed JSON is a 400 with
//! OpenAI's error object, an oversized body a 413, never axum's plain-text rejections. (Chat
//! requests, whose bodies can be long lists, use [`super::chat_body::ChatBody`] instead.)

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;

/// The request body's bytes: a 413 over `MAX_BODY_BYTES`, a 400 when empty or unreadable.
pub(crate) async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = state.config().max_body_bytes;
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::bad_request(
                format!("Could not read the request body: {rejection}"),
                None,
            )
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "The request body is empty; send a JSON object.",
            None,
        ));
    }
    Ok(bytes)
}

/// The request body parsed as a JSON value (validated field by field by each handler, so that
/// every wrong type gets a message naming the field).
pub struct JsonBody(pub serde_json::Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("The request body is not valid JSON: {e}"), None)
        })?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
                None,
            ));
        }
        Ok(JsonBody(value))
    }
}
