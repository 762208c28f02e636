//! What every call to Clerk and EngineLabs shares, whichever transport sends it: Cloudflare
//! challenge detection, `Retry-After`, and body truncation for error messages.
//!
//! Both transports run every answer through [`challenge`], so a challenge page is always
//! reported as [`UpstreamError::CloudflareChallenge`] and never mistaken for a dead cookie.

use std::time::Duration;

use http::HeaderMap;

use super::UpstreamError;

/// A Cloudflare challenge: the documented `cf-mitigated: challenge` header, or a 403/503 whose
/// body is an HTML page (challenge pages are HTML; the APIs answer JSON).
pub(crate) fn challenge(
    host: &str,
    status: u16,
    headers: &HeaderMap,
    body: &str,
) -> Option<UpstreamError> {
    let mitigated = headers
        .get("cf-mitigated")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("challenge"));
    let html = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"))
        || body.contains("Just a moment")
        || body.contains("/cdn-cgi/challenge-platform/");
    (mitigated || (matches!(status, 403 | 503) && html)).then(|| {
        UpstreamError::CloudflareChallenge {
            host: host.to_string(),
            status,
        }
    })
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these hosts).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The first 300 characters of a body, for error messages.
pub(crate) fn truncate(body: &str) -> String {
    const MAX: usize = 300;
    let body = body.trim();
    match body.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None => body.to_string(),
    }
}

/// Logs something we did not understand once per process (by `key`), at debug level.
pub(crate) fn log_unknown_once(key: &str, what: impl FnOnce() -> String) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    let first = match seen.lock() {
        Ok(mut set) => set.len() < 256 && set.insert(key.to_string()),
        Err(_) => false,
    };
    if first {
        tracing::debug!(kind = key, "upstream sent something unknown: {}", what());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn challenge_detection() {
        let cf = headers(&[("cf-mitigated", "challenge")]);
        assert!(challenge("h", 200, &cf, "").is_some());
        let html = headers(&[("content-type", "text/html; charset=UTF-8")]);
        assert!(challenge("h", 403, &html, "<html>").is_some());
        assert!(
            challenge(
                "h",
                503,
                &HeaderMap::new(),
                "<title>Just a moment...</title>"
            )
            .is_some()
        );
        assert!(
            challenge(
                "h",
                403,
                &HeaderMap::new(),
                "x /cdn-cgi/challenge-platform/ y"
            )
            .is_some()
        );
        // A JSON 403 is Clerk or EngineLabs talking, not Cloudflare.
        let json = headers(&[("content-type", "application/json")]);
        assert!(challenge("h", 403, &json, r#"{"errors":[]}"#).is_none());
        // HTML on another status is not a challenge.
        assert!(challenge("h", 404, &html, "<html>").is_none());
        match challenge("clerk.cto.new", 403, &html, "") {
            Some(UpstreamError::CloudflareChallenge { host, status }) => {
                assert_eq!(host, "clerk.cto.new");
                assert_eq!(status, 403);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate(" short "), "short");
        let long = "é".repeat(400);
        let t = truncate(&long);
        assert_eq!(t.chars().count(), 303);
        assert!(t.ends_with("..."));
    }
}
