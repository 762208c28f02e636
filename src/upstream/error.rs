//! Errors of the upstream layer. Each variant says what failed; the server maps them to
//! status codes and messages in `server::error` (one place).

use std::time::Duration;

/// What to do about a Cloudflare challenge depends on the transport this binary was built with.
#[cfg(not(feature = "impersonate"))]
const CHALLENGE_HINT: &str = "try again later, or run a build with the `impersonate` feature (Chrome fingerprint; see the README)";
#[cfg(feature = "impersonate")]
const CHALLENGE_HINT: &str = "this build already presents Chrome's fingerprint (`impersonate`): the block is on the IP or account; try again later or through another network (UPSTREAM_PROXY)";

/// `Clone` so that one failed refresh can be handed to every request that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The pasted cookie carries no `__client` value we can use.
    #[error("the configured cookie has no __client value: {0}")]
    BadCookie(String),
    /// Clerk answered 401/403 (or a signed-out client): the cookie is dead.
    #[error(
        "the cto.new cookie was rejected by Clerk ({detail}): sign in to cto.new in a browser and paste a fresh cookie"
    )]
    CookieRejected { detail: String },
    /// The CLI door's credentials (`~/.cto/credentials` or a refresh token) cannot be read.
    #[error(
        "the cto CLI credentials could not be read ({0}): paste the JSON that `cto login` wrote to ~/.cto/credentials, or its refreshToken"
    )]
    BadCliCredentials(String),
    /// The CLI door refused the login itself: the refresh token is dead (spent, revoked, logged
    /// out elsewhere), or a freshly refreshed access token was refused.
    #[error(
        "the cto CLI login was refused ({detail}): run `cto login` again and give the proxy the new refresh token from ~/.cto/credentials"
    )]
    CliLoginRejected { detail: String },
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
        "bad_cli_credentials",
        "cli_login_rejected",
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
            UpstreamError::BadCliCredentials(_) => "bad_cli_credentials",
            UpstreamError::CliLoginRejected { .. } => "cli_login_rejected",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant; `kind()`'s exhaustive match makes a new variant show up here
    /// only if it is added, so the length check below catches a forgotten `KINDS` entry.
    fn one_of_each() -> Vec<UpstreamError> {
        use UpstreamError as U;
        let s = String::new;
        vec![
            U::BadCookie(s()),
            U::CookieRejected { detail: s() },
            U::BadCliCredentials(s()),
            U::CliLoginRejected { detail: s() },
            U::CloudflareChallenge {
                host: s(),
                status: 403,
            },
            U::RateLimited {
                what: s(),
                retry_after: None,
            },
            U::QuotaExhausted {
                detail: s(),
                retry_after: None,
            },
            U::UnknownModel(s()),
            U::ImagesRefused(s()),
            U::PromptTooLarge(s()),
            U::Status {
                call: "c",
                status: 500,
                body: s(),
            },
            U::Network {
                call: "c",
                detail: s(),
            },
            U::Protocol {
                call: "c",
                detail: s(),
            },
            U::StreamClosed(s()),
            U::IdleTimeout(Duration::ZERO),
        ]
    }

    #[test]
    fn every_kind_is_listed_once() {
        let all = one_of_each();
        assert_eq!(all.len(), UpstreamError::KINDS.len());
        for e in &all {
            assert!(UpstreamError::KINDS.contains(&e.kind()), "{}", e.kind());
        }
        let mut kinds: Vec<&str> = all.iter().map(UpstreamError::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), all.len());
    }

    #[test]
    fn cli_login_errors_say_what_to_do() {
        let e = UpstreamError::CliLoginRejected {
            detail: "invalid_grant".into(),
        };
        assert!(e.to_string().contains("cto login"));
        assert!(!e.is_retryable());
        assert!(
            UpstreamError::BadCliCredentials("empty".into())
                .to_string()
                .contains("~/.cto/credentials")
        );
    }
}
