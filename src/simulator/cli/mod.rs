//! The CLI door (protocol notes §10): the OpenAI-compatible API the `cto` command-line agent
//! uses on the same host as the EngineLabs REST API. No Clerk, no trigger, no WebSocket: an
//! OAuth refresh token buys short-lived access tokens, and `/chat/completions` answers in
//! OpenAI's shapes with native `tools`.
//!
//! # Routes
//! - `POST /oauth/token` `{"grant_type":"refresh_token","refresh_token":…}` →
//!   `{"access_token","refresh_token","expires_in","token_type"}`. The refresh token rotates on
//!   every use and a spent one answers 400 `invalid_grant`, so a client that forgets to store
//!   the new one fails at its next refresh, as OAuth servers that rotate make it fail;
//! - `GET /models` (Bearer) → an OpenAI model list (see [`models`]);
//! - `POST /chat/completions` (Bearer) → `text/event-stream` chunks ending `data: [DONE]`, or one
//!   `chat.completion` object.
//!
//! Access tokens live `SimConfig::cli_token_ttl` and answer 401 once expired or when unknown;
//! web JWTs are not access tokens here, nor the reverse.
//!
//! # The model
//! It follows the web door's convention natively (docs/tool-emulation.md): a `call <tool> <json>`
//! line in the newest user message, for a tool offered in `tools`, answers with `tool_calls`
//! (arguments as written, `finish_reason: "tool_calls"`); trailing `role: "tool"` messages answer
//! `The tool returned: <first one's content>`; anything else gets the web door's deterministic
//! reply for the newest user message, its turn being the number of user messages.
//!
//! # Faults (`Faults`)
//! `trigger_status` (+ `_count`, `_user`; 429 with `Retry-After: 1`), `silent` (200, then
//! nothing), `slow_frame_ms`, `thinking` (`reasoning_content` first), `ws_drop_after` (the
//! stream breaks off after that many reasoning, content or tool-call deltas, without `[DONE]`),
//! `cloudflare_challenge`, and the per-account `cli_refresh_refused`.
//!
//! # Layout
//! - `login`: `/oauth/token`, the bearer check (the token rules are `simulator::logins`);
//! - `reply`: what a completion answers (pure) and the usage it reports;
//! - `completion`: `/chat/completions`: checks, the request record, faults, the JSON answer and
//!   the SSE stream.

mod completion;
mod login;
mod reply;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::SimState;

pub(crate) use completion::chat_completions;
pub(crate) use login::{authorize, login, token};

/// The model ids of this door. Two are the web catalogue's `model` names (`gpt-5.4` and
/// `claude-sonnet-4.5` are `gpt_5_4` and `claude_sonnet_4_5` there); `kimi-k2.5` exists only
/// here, so a client cannot assume both doors serve the same list.
pub(crate) const CLI_MODELS: &[(&str, &str)] = &[
    ("gpt-5.4", "openai"),
    ("claude-sonnet-4.5", "anthropic"),
    ("kimi-k2.5", "moonshotai"),
];

/// `GET /models`: every id of [`CLI_MODELS`] as an OpenAI model list.
pub(crate) async fn models(State(st): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&st, &headers) {
        return *r;
    }
    let data: Vec<Value> = CLI_MODELS
        .iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 1_767_225_600, "owned_by": owner}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// An OpenAI error object: `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn openai_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let mut resp = (status, Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::CLI_MODELS;
    use crate::simulator::catalogue::CATALOGUE;

    #[test]
    fn the_cli_list_shares_some_ids_with_the_web_catalogue_but_not_all() {
        let on_web = |id: &str| CATALOGUE.iter().any(|m| m.model == id);
        assert_eq!(CLI_MODELS.iter().filter(|(id, _)| on_web(id)).count(), 2);
        assert!(CLI_MODELS.iter().any(|(id, _)| !on_web(id)));
        // No adapter name (`key`, `engineAgentKey`) is a CLI id.
        assert!(CLI_MODELS.iter().all(|(id, _)| {
            CATALOGUE
                .iter()
                .all(|m| m.key != *id && m.engine_agent_key != *id)
        }));
    }
}
