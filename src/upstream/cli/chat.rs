//! `POST /chat/completions` (protocol notes §10): the body we send, the headers opencode sends,
//! and one forced refresh and retry when the access token is refused.
//!
//! # The body
//! The caller builds an OpenAI Chat Completions body; it is sent as built, unknown fields
//! included, with two defaults filled in ([`prepare`]):
//! - `stream: true` when the body does not say: events then flow as the model writes, and the
//!   head arrives at once. An explicit `stream: false` is respected (one JSON answer, turned
//!   into the same events at its end);
//! - `stream_options.include_usage: true` on a streamed body that does not say, so the last
//!   chunk reports usage (whether the door honours it is unknown \[G\]; nothing breaks if not).
//!   Other `stream_options` are kept; an explicit `false` is respected.
//!
//! # The headers
//! `Authorization: Bearer <access token>`, `x-session-id` and `x-session-affinity` (both the
//! caller's `ses_…` value), opencode's `User-Agent`, `Content-Type: application/json`.

use ::http::Method;
use ::http::header::{HeaderName, USER_AGENT};
use bytes::Bytes;
use serde_json::{Value, json};

use super::CliConfig;
use super::account::CliAccount;
use super::refusal::{failure, shown};
use crate::upstream::UpstreamError;
use crate::upstream::transport::{Download, Opened, Reply, Request, Transport};

pub const CALL_CHAT: &str = "POST /chat/completions";

const SESSION_ID: HeaderName = HeaderName::from_static("x-session-id");
const SESSION_AFFINITY: HeaderName = HeaderName::from_static("x-session-affinity");

/// The HTTP stack's own whole-request deadline, which would otherwise cut a long stream: the
/// head and the silences of the body are bounded by `CliConfig::idle_timeout` instead.
const STREAM_CEILING: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The body as sent: the caller's, with `stream` and `stream_options.include_usage` defaulted
/// to `true` (see the module doc). A body that is not an object is sent as is (the door will
/// say what it thinks of it).
pub fn prepare(mut body: Value) -> Value {
    let Some(map) = body.as_object_mut() else {
        return body;
    };
    let stream = map.entry("stream").or_insert(Value::Bool(true));
    if stream.as_bool() != Some(true) {
        return body;
    }
    let options = map.entry("stream_options").or_insert_with(|| json!({}));
    if let Some(options) = options.as_object_mut() {
        options.entry("include_usage").or_insert(Value::Bool(true));
    }
    body
}

/// Whether the answer comes as a stream of chunks (else as one JSON object).
pub fn is_streamed(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool) == Some(true)
}

fn request(cfg: &CliConfig, token: &str, session_id: &str, body: Bytes) -> Request {
    Request::new(Method::POST, format!("{}/chat/completions", cfg.base_url))
        .as_program()
        .bearer(token)
        .header(SESSION_ID, session_id)
        .header(SESSION_AFFINITY, session_id)
        .header(USER_AGENT, &cfg.user_agent)
        .body("application/json", body)
        .timeout(STREAM_CEILING)
}

/// Sends the body and waits for the answer's head: a success, its body still to be read. A
/// 401 gets one forced refresh and one retry; a second 401 means the login is refused.
pub async fn open(
    http: &Transport,
    cfg: &CliConfig,
    account: &CliAccount,
    session_id: &str,
    body: &Value,
) -> Result<Download, UpstreamError> {
    let bytes = Bytes::from(body.to_string());
    let model = body.get("model").and_then(Value::as_str);
    let tokens = account.tokens();
    let mut token = tokens.access(http, cfg).await?;
    let mut renewed = false;
    loop {
        let req = request(cfg, &token, session_id, bytes.clone());
        let opened = tokio::time::timeout(cfg.idle_timeout, http.open(CALL_CHAT, req))
            .await
            .map_err(|_| UpstreamError::Network {
                call: CALL_CHAT,
                detail: format!("no answer within {:?}", cfg.idle_timeout),
            })??;
        let reply = match opened {
            Opened::Streaming(body) => return Ok(body),
            Opened::Refused(reply) => reply,
        };
        let refresh = tokens.refresh_token();
        let secrets = [token.as_str(), refresh.expose()];
        if reply.status != 401 {
            return Err(failure(CALL_CHAT, &reply, model, &secrets));
        }
        if renewed {
            return Err(refused_twice(&reply, &secrets));
        }
        tracing::debug!(
            account = account.id(),
            "CLI access token refused; refreshing"
        );
        token = tokens.renew_refused(http, cfg, &token).await?;
        renewed = true;
    }
}

/// A freshly refreshed access token refused: the login is no good, whatever the refresh said.
pub(super) fn refused_twice(reply: &Reply, secrets: &[&str]) -> UpstreamError {
    UpstreamError::CliLoginRejected {
        detail: format!(
            "the API refused a freshly refreshed access token (HTTP 401: {})",
            shown(&reply.body, secrets)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_and_usage_are_defaulted_and_the_rest_kept() {
        let body = json!({"model": "m", "messages": [], "providerOptions": {"x": [1]},
                          "stream_options": {"other": 1}});
        let sent = prepare(body);
        assert_eq!(sent["stream"], true);
        assert_eq!(
            sent["stream_options"],
            json!({"other": 1, "include_usage": true})
        );
        assert_eq!(sent["providerOptions"], json!({"x": [1]}));
        assert!(is_streamed(&sent));
    }

    #[test]
    fn explicit_choices_are_respected() {
        let sent = prepare(json!({"stream": false}));
        assert_eq!(sent, json!({"stream": false}));
        assert!(!is_streamed(&sent));
        let sent = prepare(json!({"stream": true, "stream_options": {"include_usage": false}}));
        assert_eq!(sent["stream_options"]["include_usage"], false);
        assert_eq!(prepare(json!([1])), json!([1]));
    }

    #[test]
    fn requests_carry_the_session_and_the_user_agent() {
        let cfg = CliConfig::from_upstream(&crate::upstream::UpstreamConfig::with_urls(
            "http://c",
            "http://e/",
        ));
        let req = request(&cfg, "at", "ses_1", Bytes::from_static(b"{}"));
        assert_eq!(req.url, "http://e/chat/completions");
        assert_eq!(req.headers["x-session-id"], "ses_1");
        assert_eq!(req.headers["x-session-affinity"], "ses_1");
        assert_eq!(
            req.headers[USER_AGENT],
            super::super::DEFAULT_CLI_USER_AGENT
        );
        assert_eq!(req.headers[::http::header::AUTHORIZATION], "Bearer at");
        assert_eq!(
            req.headers[::http::header::CONTENT_TYPE],
            "application/json"
        );
    }
}
