//! The one place where every error of every layer becomes an HTTP answer.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` writes OpenAI's error object
//! `{"error":{"message","type","param","code"}}` with the right status. Upstream errors carry
//! messages that say what failed and what to do (see `upstream::error`). Which one to use:
//! request problems are `BadRequest`/`ModelNotFound`/`PayloadTooLarge`/`RequestTimeout`, key
//! problems `Unauthorized`, anything that went wrong beyond us `Upstream`. `TooManyConnections`
//! is written by the accept loop itself, before any request is read (see [`ApiError::raw_http`]).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::pool::PoolError;
use crate::pool::manage::ManageError;
use crate::relay::RelayError;
use crate::upstream::UpstreamError;

/// The OpenAI error object's `type`: one of these, written by [`ErrorType::as_str`] only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The request itself is wrong (or its key): fix the request.
    InvalidRequest,
    /// Too many requests: retry later (`Retry-After` says when).
    RateLimit,
    /// Out of credits (OpenAI's type for a spent quota): wait for it to refill.
    InsufficientQuota,
    /// Something failed on our side.
    Server,
    /// cto.new (or the way to it) failed.
    Upstream,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request_error",
            ErrorType::RateLimit => "rate_limit_error",
            ErrorType::InsufficientQuota => "insufficient_quota",
            ErrorType::Server => "server_error",
            ErrorType::Upstream => "upstream_error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<&'static str>,
        code: Option<&'static str>,
    },
    #[error("Incorrect or missing API key. Send it as `Authorization: Bearer <key>`.")]
    Unauthorized,
    #[error(
        "The model `{}` does not exist or you do not have access to it. GET /v1/models lists the models this proxy offers.",
        clipped(.0)
    )]
    ModelNotFound(String),
    #[error("The request body is larger than the limit of {0} bytes (MAX_BODY_BYTES).")]
    PayloadTooLarge(usize),
    #[error(
        "The request body did not arrive within {} s (REQUEST_BODY_TIMEOUT_SECS). Send the body right after the headers.",
        .0.as_secs()
    )]
    RequestTimeout(Duration),
    #[error(
        "This proxy is serving its limit of {0} connections (MAX_CONNECTIONS). Retry shortly, or reuse a kept-alive connection."
    )]
    TooManyConnections(usize),
    #[error(
        "Unknown route {0}. This proxy serves /v1/chat/completions, /v1/responses, /v1/messages and /v1/models."
    )]
    NotFound(String),
    #[error("Method {0} is not allowed on this route.")]
    MethodNotAllowed(String),
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error(
        "The admin API is off. Set ADMIN_KEY and send it as `Authorization: Bearer <ADMIN_KEY>`."
    )]
    AdminOff,
    #[error("Incorrect or missing admin key. Send ADMIN_KEY as `Authorization: Bearer <key>`.")]
    AdminUnauthorized,
    #[error(
        "Too many wrong admin keys from this address; no key is checked for {} more seconds.",
        .0.as_secs().max(1)
    )]
    AdminLockedOut(Duration),
    #[error(transparent)]
    Manage(#[from] ManageError),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>, param: Option<&'static str>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            param,
            code: None,
        }
    }

    /// Status, OpenAI `type` and `code`.
    fn parts(&self) -> (StatusCode, ErrorType, Option<&'static str>) {
        match self {
            ApiError::BadRequest { code, .. } => {
                (StatusCode::BAD_REQUEST, ErrorType::InvalidRequest, *code)
            }
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                ErrorType::InvalidRequest,
                Some("invalid_api_key"),
            ),
            ApiError::ModelNotFound(_) => (
                StatusCode::NOT_FOUND,
                ErrorType::InvalidRequest,
                Some("model_not_found"),
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorType::InvalidRequest,
                Some("request_too_large"),
            ),
            ApiError::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                ErrorType::InvalidRequest,
                Some("request_timeout"),
            ),
            ApiError::TooManyConnections(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorType::Server,
                Some("too_many_connections"),
            ),
            ApiError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                ErrorType::InvalidRequest,
                Some("unknown_url"),
            ),
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorType::InvalidRequest,
                Some("method_not_allowed"),
            ),
            ApiError::Relay(RelayError::Pool(e)) => pool_parts(e),
            ApiError::Relay(RelayError::NoAccount) => pool_parts(&PoolError::NoAccount),
            ApiError::Relay(RelayError::PromptTooLong { .. }) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorType::InvalidRequest,
                Some("prompt_too_long"),
            ),
            ApiError::AdminOff => (
                StatusCode::NOT_FOUND,
                ErrorType::InvalidRequest,
                Some("admin_disabled"),
            ),
            ApiError::AdminUnauthorized => (
                StatusCode::UNAUTHORIZED,
                ErrorType::InvalidRequest,
                Some("invalid_admin_key"),
            ),
            ApiError::AdminLockedOut(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorType::RateLimit,
                Some("admin_locked_out"),
            ),
            ApiError::Manage(e) => match e {
                ManageError::NotFound(_) => (
                    StatusCode::NOT_FOUND,
                    ErrorType::InvalidRequest,
                    Some("account_not_found"),
                ),
                ManageError::Rejected(u) => match u {
                    UpstreamError::BadCookie(_) | UpstreamError::CookieRejected { .. } => (
                        StatusCode::BAD_REQUEST,
                        ErrorType::InvalidRequest,
                        Some("cookie_rejected"),
                    ),
                    other => upstream_parts(other),
                },
                ManageError::Duplicate(_) => (
                    StatusCode::CONFLICT,
                    ErrorType::InvalidRequest,
                    Some("account_exists"),
                ),
                ManageError::Store(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorType::Server,
                    Some("store_error"),
                ),
            },
            ApiError::Relay(RelayError::Upstream(e)) => upstream_parts(e),
        }
    }

    /// How long a client should wait before retrying, where the upstream said so.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Relay(RelayError::Upstream(
                UpstreamError::RateLimited { retry_after, .. }
                | UpstreamError::QuotaExhausted { retry_after, .. },
            )) => Some(retry_after.unwrap_or(Duration::from_secs(30))),
            ApiError::Relay(RelayError::Pool(e)) => e.retry_after(),
            ApiError::TooManyConnections(_) => Some(Duration::from_secs(1)),
            ApiError::AdminLockedOut(wait) => Some(*wait),
            _ => None,
        }
    }

    /// The error as OpenAI's JSON object (also used inside SSE error events).
    pub fn to_json(&self) -> serde_json::Value {
        let (_, kind, code) = self.parts();
        let param = match self {
            ApiError::BadRequest { param, .. } => *param,
            ApiError::ModelNotFound(_) => Some("model"),
            _ => None,
        };
        json!({"error": {"message": self.to_string(), "type": kind.as_str(), "param": param, "code": code}})
    }

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The whole HTTP/1.1 answer as bytes, `Connection: close`, for the places that answer
    /// before hyper has a request to hand to the router (a connection refused by the cap).
    pub fn raw_http(&self) -> Vec<u8> {
        let status = self.status();
        let body = self.to_json().to_string();
        let retry = self
            .retry_after()
            .map(|d| format!("retry-after: {}\r\n", d.as_secs().max(1)))
            .unwrap_or_default();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry}connection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
        )
        .into_bytes()
    }
}

/// Most characters of a client's string quoted back in an error message.
const MAX_QUOTED_CHARS: usize = 100;

/// A client's string as an error message quotes it: whole when short, else its start and an
/// ellipsis (a megabyte model name must not come back as a megabyte error, nor go to the log).
fn clipped(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        None => s.into(),
        Some((end, _)) => format!("{}…", &s[..end]).into(),
    }
}

/// No account could take the request: nothing configured or all dead (503: an operator must
/// act), or all resting / queue full (429 with Retry-After: the client may try again).
fn pool_parts(e: &PoolError) -> (StatusCode, ErrorType, Option<&'static str>) {
    let (status, code) = match e {
        PoolError::NoAccount => (StatusCode::SERVICE_UNAVAILABLE, "no_account"),
        // The same code as a single rejected cookie: the fix is the same (fresh cookies).
        PoolError::AllDead { dead, dead_cli, .. } if dead.is_empty() && !dead_cli.is_empty() => {
            (StatusCode::SERVICE_UNAVAILABLE, "cli_login_rejected")
        }
        PoolError::AllDead { .. } => (StatusCode::SERVICE_UNAVAILABLE, "cookie_rejected"),
        PoolError::OwnerUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "account_unavailable"),
        PoolError::NoDoor { .. } => (StatusCode::SERVICE_UNAVAILABLE, "no_account_for_model"),
        PoolError::AllCooling { .. } => (StatusCode::TOO_MANY_REQUESTS, "accounts_cooling"),
        PoolError::QueueFull { .. } => (StatusCode::TOO_MANY_REQUESTS, "queue_full"),
        PoolError::QueueTimeout { .. } => (StatusCode::TOO_MANY_REQUESTS, "queue_timeout"),
    };
    let kind = if status == StatusCode::TOO_MANY_REQUESTS {
        ErrorType::RateLimit
    } else {
        ErrorType::Upstream
    };
    (status, kind, Some(code))
}

fn upstream_parts(e: &UpstreamError) -> (StatusCode, ErrorType, Option<&'static str>) {
    use UpstreamError as U;
    let status = match e {
        U::UnknownModel(_) => {
            return (
                StatusCode::NOT_FOUND,
                ErrorType::InvalidRequest,
                Some("model_not_found"),
            );
        }
        U::ImagesRefused(_) => {
            return (
                StatusCode::BAD_REQUEST,
                ErrorType::InvalidRequest,
                Some("images_not_supported"),
            );
        }
        U::PromptTooLarge(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorType::InvalidRequest,
                Some("prompt_too_large"),
            );
        }
        U::RateLimited { .. } => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorType::RateLimit,
                Some("upstream_rate_limited"),
            );
        }
        U::QuotaExhausted { .. } => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorType::InsufficientQuota,
                Some("upstream_quota_exhausted"),
            );
        }
        U::BadCookie(_)
        | U::CookieRejected { .. }
        | U::BadCliCredentials(_)
        | U::CliLoginRejected { .. }
        | U::CloudflareChallenge { .. } => StatusCode::SERVICE_UNAVAILABLE,
        U::IdleTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        U::Status { .. } | U::Network { .. } | U::Protocol { .. } | U::StreamClosed(_) => {
            StatusCode::BAD_GATEWAY
        }
    };
    let code = match e {
        U::BadCookie(_) => "bad_cookie",
        U::CookieRejected { .. } => "cookie_rejected",
        U::BadCliCredentials(_) => "bad_cli_credentials",
        U::CliLoginRejected { .. } => "cli_login_rejected",
        U::CloudflareChallenge { .. } => "cloudflare_challenge",
        U::IdleTimeout(_) => "upstream_timeout",
        _ => "upstream_error",
    };
    (status, ErrorType::Upstream, Some(code))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.retry_after();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request rejected");
        }
        let mut resp = (status, axum::Json(self.to_json())).into_response();
        if let Some(after) = retry
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        ApiError::Relay(RelayError::Upstream(e))
    }
}

/// A request's images the catalogue refused: the client's to fix, about its `messages`.
impl From<crate::catalog::ImageError> for ApiError {
    fn from(e: crate::catalog::ImageError) -> Self {
        ApiError::bad_request(e.to_string(), Some("messages"))
    }
}
