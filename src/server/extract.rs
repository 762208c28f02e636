//! Extractors whose rejections use our error shape, never axum's plain-text ones: the JSON body
//! (malformed JSON is a 400 with OpenAI's error object, an oversized body a 413, a body slower
//! than `REQUEST_BODY_TIMEOUT_SECS` a 408), the query string and the path parameters (a 400
//! naming what did not parse). Chat requests, whose bodies can be long lists, use
//! [`super::chat_body::ChatBody`] instead.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

/// The request body's bytes: a 413 over `MAX_BODY_BYTES`, a 408 past
/// `REQUEST_BODY_TIMEOUT_SECS`, a 400 when empty or unreadable.
pub(crate) async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let RawBody(bytes) = RawBody::from_request(req, state).await?;
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

/// The request body as bytes, read whole within `MAX_BODY_BYTES` and `REQUEST_BODY_TIMEOUT_SECS`.
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| rejected(&rejection, state))
    }
}

/// Why the body could not be read, in our terms.
fn rejected(rejection: &BytesRejection, state: &AppState) -> ApiError {
    let config = state.config();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge(config.max_body_bytes);
    }
    if timed_out(rejection) {
        return ApiError::RequestTimeout(config.connections.request_body_timeout);
    }
    ApiError::bad_request(
        format!("Could not read the request body: {rejection}"),
        None,
    )
}

/// Whether the body failed because its deadline (the `RequestBodyDeadlineLayer` in
/// [`super::app`]) passed: that error sits somewhere in the rejection's chain of sources.
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The query string as `T` (axum's `Query`, rejecting with a 400 in our shape).
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| {
                ApiError::bad_request(
                    format!("The query string is not valid: {}", e.body_text()),
                    None,
                )
            })
    }
}

/// The path parameters as `T` (axum's `Path`, rejecting with a 400 in our shape).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| {
                ApiError::bad_request(format!("The URL is not valid: {}", e.body_text()), None)
            })
    }
}
