//! Anthropic's error shape, `{"type":"error","error":{"type","message"}}`, for every
//! [`ApiError`].
//!
//! Statuses, messages, logging and `Retry-After` all come from [`ApiError`]'s own response (the
//! one mapping of the crate); this file only renames the error kind after the status, the way
//! Anthropic's API does, and swaps the body.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::server::AppState;
use crate::server::chat_body::ChatBody;
use crate::server::error::ApiError;

/// An [`ApiError`] that answers in Anthropic's shape; handlers of this surface return it.
#[derive(Debug)]
pub struct AnthropicError(pub ApiError);

impl From<ApiError> for AnthropicError {
    fn from(e: ApiError) -> Self {
        AnthropicError(e)
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        to_anthropic(self.0)
    }
}

/// The HTTP answer for `err` in Anthropic's shape, with the status and headers the OpenAI
/// surface would give it.
pub fn to_anthropic(err: ApiError) -> Response {
    let body = body(&err);
    let openai = err.into_response();
    let mut resp = (openai.status(), axum::Json(body)).into_response();
    if let Some(after) = openai.headers().get(header::RETRY_AFTER) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, after.clone());
    }
    resp
}

/// The error object (also the data of a mid-stream `error` event).
pub fn body(err: &ApiError) -> Value {
    let message = match err {
        ApiError::Unauthorized => {
            "Incorrect or missing API key. Send it as `x-api-key: <key>` (or `Authorization: Bearer <key>`).".to_string()
        }
        other => other.to_string(),
    };
    json!({"type": "error", "error": {"type": kind(err.status()), "message": message}})
}

/// Anthropic's error type for a status.
pub fn kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The JSON body, rejected (malformed, empty, too large, too many messages) in Anthropic's
/// shape.
pub struct AnthropicJson(pub ChatBody);

impl FromRequest<AppState> for AnthropicJson {
    type Rejection = AnthropicError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(AnthropicJson(ChatBody::from_request(req, state).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::RelayError;
    use crate::upstream::UpstreamError;

    #[test]
    fn kinds_follow_the_status() {
        let cases = [
            (
                ApiError::bad_request("x", None),
                400,
                "invalid_request_error",
            ),
            (ApiError::Unauthorized, 401, "authentication_error"),
            (ApiError::ModelNotFound("m".into()), 404, "not_found_error"),
            (ApiError::PayloadTooLarge(10), 413, "request_too_large"),
            (
                ApiError::Relay(RelayError::NoAccount),
                503,
                "overloaded_error",
            ),
            (
                UpstreamError::StreamClosed("gone".into()).into(),
                502,
                "api_error",
            ),
        ];
        for (err, status, want) in cases {
            assert_eq!(err.status().as_u16(), status, "{err}");
            let b = body(&err);
            assert_eq!(b["type"], "error");
            assert_eq!(b["error"]["type"], want, "{err}");
            assert!(
                b["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }

    #[test]
    fn keeps_status() {
        let resp = to_anthropic(ApiError::ModelNotFound("nope".into()));
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}
