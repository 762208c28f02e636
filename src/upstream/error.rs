//! Errors of the upstream layer. Each variant says what failed; the server maps them to
//! status codes and messages in `server::error` (one place).

use std::time::Duration;

/// What to do about a Cloudflare challenge depends on the transport this binary was built with.
#[cfg(not(feature = "impersonate"))]
const CHALLENGE_HINT: &str = "try again later, or run a build with the `impersonate` feature (Chrome fingerprint; see the README)";
#[cfg(feature = "impersonate")]
const CHALLENGE_HINT: &str = "this build already presents Chrome's fingerprint (`impersonate`): the block is on the IP or account; try again later or through another network (UPSTREAM_PROXY)";

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The pasted cookie carries no `__client` value we can use.
    #[error("the configured cookie has no __client value: {0}")]
    BadCookie(String),
    /// Clerk answered 401/403 (or a signed-out client): the cookie is dead.
    #[error(
        "the cto.new cookie was rejected by Clerk ({detail}): sign in to cto.new in a browser and paste a fresh cookie"
    )]
    CookieRejected { detail: String },
    /// Cloudflare answered with a challenge page instead of the API.
    #[error(
        "Cloudflare challenged the request to {host} (status {status}): the upstream blocks this client; {}",
        CHALLENGE_HINT
    )]
    CloudflareChallenge { host: String, status: u16 },
    /// A 429 from Clerk or EngineLabs.
    #[error("cto.new rate-limited the request ({what})")]
    RateLimited {
        what: String,
        retry_after: Option<Duration>,
    },
    /// The account ran out of credits/quota.
    #[error("the cto.new account is out of credits ({detail})")]
    QuotaExhausted {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// The model name is unknown upstream.
    #[error("model `{0}` is not offered by cto.new for this account")]
    UnknownModel(String),
    /// The turn has images the model or protocol generation cannot take.
    #[error("{0}")]
    ImagesRefused(String),
    /// The upstream refused the prompt as too large (413).
    #[error("cto.new refused the prompt as too large ({0})")]
    PromptTooLarge(String),
    /// Any other non-success HTTP status from a named call.
    #[error("cto.new call `{call}` failed with HTTP {status}: {body}")]
    Status {
        call: &'static str,
        status: u16,
        body: String,
    },
    /// The call did not get an answer (connect error, timeout, reset).
    #[error("could not reach cto.new for `{call}`: {detail}")]
    Network { call: &'static str, detail: String },
    /// The upstream answered something we could not understand.
    #[error("cto.new answered `{call}` with something unexpected: {detail}")]
    Protocol { call: &'static str, detail: String },
    /// The WebSocket closed before the turn ended.
    #[error("the cto.new stream closed before the answer was complete ({0})")]
    StreamClosed(String),
    /// No frame arrived within the idle timeout.
    #[error("the cto.new stream sent nothing for {0:?}; the turn was abandoned")]
    IdleTimeout(Duration),
}

impl UpstreamError {
    /// Every value [`UpstreamError::kind`] can return (metrics declare a series for each).
    pub const KINDS: &'static [&'static str] = &[
        "bad_cookie",
        "cookie_rejected",
        "cloudflare_challenge",
        "rate_limited",
        "quota_exhausted",
        "unknown_model",
        "images_refused",
        "prompt_too_large",
        "status",
        "network",
        "protocol",
        "stream_closed",
        "idle_timeout",
    ];

    /// Whether trying the same call again (later, or on another account) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Network { .. }
            | UpstreamError::RateLimited { .. }
            | UpstreamError::StreamClosed(_)
            | UpstreamError::IdleTimeout(_) => true,
            UpstreamError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// A short, stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::BadCookie(_) => "bad_cookie",
            UpstreamError::CookieRejected { .. } => "cookie_rejected",
            UpstreamError::CloudflareChallenge { .. } => "cloudflare_challenge",
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::QuotaExhausted { .. } => "quota_exhausted",
            UpstreamError::UnknownModel(_) => "unknown_model",
            UpstreamError::ImagesRefused(_) => "images_refused",
            UpstreamError::PromptTooLarge(_) => "prompt_too_large",
            UpstreamError::Status { .. } => "status",
            UpstreamError::Network { .. } => "network",
            UpstreamError::Protocol { .. } => "protocol",
            UpstreamError::StreamClosed(_) => "stream_closed",
            UpstreamError::IdleTimeout(_) => "idle_timeout",
        }
    }
}
