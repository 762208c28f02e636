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

/// Declares [`ErrorKind`] and its labels from one list: a new kind is one line here.
macro_rules! error_kinds {
    ($($kind:ident => $label:literal,)+) => {
        /// What kind of failure an [`UpstreamError`] is: a short, stable label for metrics and
        /// logs (`el2a_upstream_errors_total{kind=...}`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($kind,)+
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)+];
            /// The label of every kind, in the order of [`ErrorKind::ALL`] (metrics show a series
            /// for each from the first scrape).
            pub const LABELS: &'static [&'static str] = &[$($label,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $label,)+
                }
            }
        }
    };
}

error_kinds! {
    BadCookie => "bad_cookie",
    CookieRejected => "cookie_rejected",
    BadCliCredentials => "bad_cli_credentials",
    CliLoginRejected => "cli_login_rejected",
    CloudflareChallenge => "cloudflare_challenge",
    RateLimited => "rate_limited",
    QuotaExhausted => "quota_exhausted",
    UnknownModel => "unknown_model",
    ImagesRefused => "images_refused",
    PromptTooLarge => "prompt_too_large",
    Status => "status",
    Network => "network",
    Protocol => "protocol",
    StreamClosed => "stream_closed",
    IdleTimeout => "idle_timeout",
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind equals its label, so tests and logs can name kinds as metrics spell them.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, label: &&str) -> bool {
        self.as_str() == *label
    }
}

impl UpstreamError {
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

    /// What kind of failure this is (its label for metrics and logs).
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpstreamError::BadCookie(_) => ErrorKind::BadCookie,
            UpstreamError::CookieRejected { .. } => ErrorKind::CookieRejected,
            UpstreamError::BadCliCredentials(_) => ErrorKind::BadCliCredentials,
            UpstreamError::CliLoginRejected { .. } => ErrorKind::CliLoginRejected,
            UpstreamError::CloudflareChallenge { .. } => ErrorKind::CloudflareChallenge,
            UpstreamError::RateLimited { .. } => ErrorKind::RateLimited,
            UpstreamError::QuotaExhausted { .. } => ErrorKind::QuotaExhausted,
            UpstreamError::UnknownModel(_) => ErrorKind::UnknownModel,
            UpstreamError::ImagesRefused(_) => ErrorKind::ImagesRefused,
            UpstreamError::PromptTooLarge(_) => ErrorKind::PromptTooLarge,
            UpstreamError::Status { .. } => ErrorKind::Status,
            UpstreamError::Network { .. } => ErrorKind::Network,
            UpstreamError::Protocol { .. } => ErrorKind::Protocol,
            UpstreamError::StreamClosed(_) => ErrorKind::StreamClosed,
            UpstreamError::IdleTimeout(_) => ErrorKind::IdleTimeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant: with `kind()`'s exhaustive match, the checks below catch a
    /// variant whose kind is shared or missing from `ErrorKind`.
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
        assert_eq!(all.len(), ErrorKind::ALL.len());
        let kinds: Vec<ErrorKind> = all.iter().map(UpstreamError::kind).collect();
        assert_eq!(
            kinds,
            ErrorKind::ALL,
            "one variant per kind, in declaration order"
        );
        let labels: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(labels, ErrorKind::LABELS);
        let mut unique = labels.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), labels.len());
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
