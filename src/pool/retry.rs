//! What to do after a failed attempt to start a turn, and how long to wait before the next.
//!
//! Only the start of a turn is retried (before anything reached the client); a stream that
//! breaks later is reported, never replayed, because the client already saw part of it.

use std::time::Duration;

use rand::Rng;

use crate::upstream::UpstreamError;

/// How a failure reflects on the account and the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The request cannot succeed anywhere now (unknown model, prompt too large, 4xx,
    /// a Cloudflare challenge).
    Fatal,
    /// The cookie is no good: the account needs a fresh one. Try another account.
    Dead,
    /// Rate limited or out of credits: rest the account (for the upstream's Retry-After if
    /// given), try another.
    Cool(Option<Duration>),
    /// Network error, 5xx, 429 on a setup call: worth trying again after a pause.
    Transient,
}

/// Sorts an upstream error into a [`Verdict`].
pub fn classify(e: &UpstreamError) -> Verdict {
    use UpstreamError as U;
    match e {
        U::BadCookie(_)
        | U::CookieRejected { .. }
        | U::BadCliCredentials(_)
        | U::CliLoginRejected { .. } => Verdict::Dead,
        U::RateLimited { retry_after, .. } | U::QuotaExhausted { retry_after, .. } => {
            Verdict::Cool(*retry_after)
        }
        // A challenge is aimed at this client's address, not at one account: another account
        // or a retry a moment later meets the same page.
        U::UnknownModel(_)
        | U::PromptTooLarge(_)
        | U::Protocol { .. }
        | U::CloudflareChallenge { .. } => Verdict::Fatal,
        U::Status { .. } if !e.is_retryable() => Verdict::Fatal,
        _ if e.is_retryable() => Verdict::Transient,
        _ => Verdict::Fatal,
    }
}

/// Exponential backoff with jitter: attempt `n` waits a random time between half and all of
/// `base * 2^n` (capped at `max`), so many requests failing together do not retry together.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        let half = cap / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let status = |status| UpstreamError::Status {
            call: "chat",
            status,
            body: String::new(),
        };
        assert_eq!(classify(&status(503)), Verdict::Transient);
        assert_eq!(classify(&status(400)), Verdict::Fatal);
        assert_eq!(
            classify(&UpstreamError::UnknownModel("x".into())),
            Verdict::Fatal
        );
        assert_eq!(
            classify(&UpstreamError::PromptTooLarge("x".into())),
            Verdict::Fatal
        );
        assert_eq!(
            classify(&UpstreamError::CookieRejected { detail: "x".into() }),
            Verdict::Dead
        );
        assert_eq!(
            classify(&UpstreamError::CliLoginRejected { detail: "x".into() }),
            Verdict::Dead
        );
        assert_eq!(
            classify(&UpstreamError::RateLimited {
                what: "chat".into(),
                retry_after: Some(Duration::from_secs(7))
            }),
            Verdict::Cool(Some(Duration::from_secs(7)))
        );
        assert_eq!(
            classify(&UpstreamError::Network {
                call: "chat",
                detail: "reset".into()
            }),
            Verdict::Transient
        );
    }

    #[test]
    fn backoff_grows_within_bounds() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 0..10 {
            let cap = (Duration::from_millis(100) * (1 << attempt)).min(Duration::from_secs(1));
            for _ in 0..20 {
                let d = b.delay(attempt);
                assert!(
                    d >= cap / 2 && d <= cap,
                    "attempt {attempt}: {d:?} vs {cap:?}"
                );
            }
        }
    }
}
