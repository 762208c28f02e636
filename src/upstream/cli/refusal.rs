//! What a non-success answer of the CLI door's API means, for the pool and for the operator.
//!
//! Bodies are assumed OpenAI-shaped (`{"error": {"message", "type", "code"}}`) or OAuth-shaped
//! (`{"error", "error_description"}`) but anything is accepted (protocol notes §10 \[G\]). They are
//! shown verbatim, minus the tokens we sent, cut to a few hundred characters. A 401 is the
//! caller's (it refreshes and retries once) and does not reach [`failure`] before that.

use serde_json::Value;

use crate::upstream::UpstreamError;
use crate::upstream::answer::{retry_after, truncate};
use crate::upstream::transport::Reply;

/// What a scrubbed secret is replaced with.
const REDACTED: &str = "<redacted>";

/// The body as it may be shown: every secret replaced, then cut (see `answer::truncate`).
pub fn shown(body: &str, secrets: &[&str]) -> String {
    let mut body = body.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        body = body.replace(secret, REDACTED);
    }
    truncate(&body)
}

/// The error code of an OpenAI or OAuth body: `error.code`, else `error.type`, else `error`
/// itself when it is a string (OAuth). Lowercase.
pub fn error_code(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let error = v.get("error")?;
    let code = match error {
        Value::String(s) => s.as_str(),
        Value::Object(_) => ["code", "type"]
            .iter()
            .find_map(|k| error.get(*k)?.as_str())?,
        _ => return None,
    };
    Some(code.to_ascii_lowercase())
}

/// Whether a refusal is about money rather than pace (OpenAI says `insufficient_quota` with a
/// 429; gateways say 402 or write about credits).
fn about_quota(status: u16, code: &str, body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    status == 402
        || code.contains("quota")
        || code.contains("credit")
        || code.contains("billing")
        || ["quota", "credit", "billing", "usage limit"]
            .iter()
            .any(|k| lower.contains(k))
}

/// Whether a 400 says the prompt is over the model's context.
fn too_long(code: &str, body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    code == "context_length_exceeded"
        || lower.contains("context length")
        || lower.contains("context window")
        || lower.contains("maximum context")
}

/// Maps a refusal of `call` (other than the first 401). `model` is the one requested, for an
/// unknown-model answer; `secrets` are scrubbed from the body.
pub fn failure(
    call: &'static str,
    reply: &Reply,
    model: Option<&str>,
    secrets: &[&str],
) -> UpstreamError {
    let body = shown(&reply.body, secrets);
    let code = error_code(&reply.body).unwrap_or_default();
    let wait = retry_after(&reply.headers);
    match reply.status {
        402..=429 if about_quota(reply.status, &code, &reply.body) => {
            UpstreamError::QuotaExhausted {
                detail: format!("{call}: {body}"),
                retry_after: wait,
            }
        }
        429 => UpstreamError::RateLimited {
            what: format!("{call}: {body}"),
            retry_after: wait,
        },
        413 => UpstreamError::PromptTooLarge(body),
        400 if too_long(&code, &reply.body) => UpstreamError::PromptTooLarge(body),
        404 if code == "model_not_found" || (model.is_some() && body.contains("model")) => {
            UpstreamError::UnknownModel(model.unwrap_or_default().to_string())
        }
        status => UpstreamError::Status { call, status, body },
    }
}

/// An error object sent in place of a chunk, mid-stream (`{"error": {...}}`).
pub fn mid_stream(call: &'static str, error: &Value) -> UpstreamError {
    let body = truncate(&error.to_string());
    let code = ["code", "type"]
        .iter()
        .find_map(|k| error.get(*k)?.as_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c));
    if code.contains("rate_limit") || status == Some(429) && !about_quota(429, &code, &body) {
        return UpstreamError::RateLimited {
            what: format!("{call}, mid-stream: {body}"),
            retry_after: None,
        };
    }
    if about_quota(0, &code, &body) {
        return UpstreamError::QuotaExhausted {
            detail: format!("{call}, mid-stream: {body}"),
            retry_after: None,
        };
    }
    UpstreamError::Status {
        call,
        status: status.unwrap_or(502),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = "POST /chat/completions";

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: ::http::HeaderMap::new(),
            body: body.to_string(),
        }
    }

    fn openai(code: &str, message: &str) -> String {
        serde_json::json!({"error": {"message": message, "type": "x", "param": null, "code": code}})
            .to_string()
    }

    #[test]
    fn bodies_are_scrubbed_and_cut() {
        let body = format!("token cto_at_secret refused {}", "x".repeat(1000));
        let shown = shown(&body, &["cto_at_secret", ""]);
        assert!(shown.starts_with("token <redacted> refused"), "{shown}");
        assert!(shown.chars().count() <= 303);
    }

    #[test]
    fn codes_come_from_openai_and_oauth_bodies() {
        assert_eq!(
            error_code(&openai("Model_Not_Found", "m")).as_deref(),
            Some("model_not_found")
        );
        assert_eq!(
            error_code(r#"{"error":"invalid_grant"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(
            error_code(r#"{"error":{"type":"server_error"}}"#).as_deref(),
            Some("server_error")
        );
        assert_eq!(error_code("<html>"), None);
    }

    #[test]
    fn statuses_map_to_what_the_pool_understands() {
        let map = |status, body: &str| failure(CALL, &reply(status, body), Some("gpt-x"), &[]);
        assert_eq!(
            map(429, &openai("rate_limit_exceeded", "slow down")).kind(),
            "rate_limited"
        );
        assert_eq!(
            map(429, &openai("insufficient_quota", "pay")).kind(),
            "quota_exhausted"
        );
        assert_eq!(map(402, "Payment Required").kind(), "quota_exhausted");
        assert_eq!(map(413, "").kind(), "prompt_too_large");
        assert_eq!(
            map(400, &openai("context_length_exceeded", "too long")).kind(),
            "prompt_too_large"
        );
        match map(
            404,
            &openai("model_not_found", "The model `gpt-x` does not exist"),
        ) {
            UpstreamError::UnknownModel(m) => assert_eq!(m, "gpt-x"),
            other => panic!("{other:?}"),
        }
        let e = map(503, &openai("simulated", "Simulated upstream failure"));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("Simulated upstream failure"), "{e}");
        let e = map(400, &openai("invalid_request", "messages must be an array"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn retry_after_is_kept() {
        let mut r = reply(429, "");
        r.headers.insert(
            ::http::header::RETRY_AFTER,
            ::http::HeaderValue::from_static("7"),
        );
        match failure(CALL, &r, None, &[]) {
            UpstreamError::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Some(std::time::Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mid_stream_errors_are_sorted_too() {
        let e = |v: Value| mid_stream(CALL, &v).kind();
        assert_eq!(
            e(serde_json::json!({"message": "slow", "code": 429})),
            "rate_limited"
        );
        assert_eq!(
            e(serde_json::json!({"message": "no credits left", "type": "x"})),
            "quota_exhausted"
        );
        let err = mid_stream(CALL, &serde_json::json!({"message": "overloaded"}));
        assert!(err.is_retryable(), "{err}");
    }
}
