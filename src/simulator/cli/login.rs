//! The CLI door's OAuth handlers: `POST /oauth/token`, the bearer check of the other CLI routes
//! and the control plane's `cli-login`. The token rules themselves are
//! [`Logins`](crate::simulator::logins::Logins); these handlers only add locking, faults and
//! counters.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::openai_error;
use crate::simulator::SimCliAccount;

use crate::simulator::state::SimState;
use crate::simulator::util::lock;

/// Logs an existing account in on the CLI door (a new refresh token); `None` for an unknown
/// user.
pub(crate) fn login(st: &SimState, user_id: &str) -> Option<SimCliAccount> {
    if !lock(&st.inner).accounts.contains_key(user_id) {
        return None;
    }
    let refresh_token = lock(&st.cli).login(user_id);
    Some(SimCliAccount {
        user_id: user_id.to_owned(),
        refresh_token,
    })
}

/// An OAuth error body (`{"error", "error_description"}`, RFC 6749 §5.2).
fn oauth_error(code: &str, description: &str) -> Response {
    let body = json!({"error": code, "error_description": description});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// `POST /oauth/token` with a JSON body; only the `refresh_token` grant exists.
pub(crate) async fn token(State(st): State<Arc<SimState>>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return oauth_error("invalid_request", "The body must be a JSON object.");
    };
    if body.get("grant_type").and_then(Value::as_str) != Some("refresh_token") {
        return oauth_error(
            "unsupported_grant_type",
            "Only the refresh_token grant is supported.",
        );
    }
    let Some(presented) = body.get("refresh_token").and_then(Value::as_str) else {
        return oauth_error("invalid_request", "refresh_token is required.");
    };
    let owner = lock(&st.cli).owner(presented).map(str::to_owned);
    let Some(user) = owner else {
        return oauth_error(
            "invalid_grant",
            "The refresh token is invalid, expired or already used.",
        );
    };
    let refused = lock(&st.faults).cli_refresh_refused.contains(&user);
    if refused {
        lock(&st.stats).cli_refused_refreshes += 1;
        return oauth_error("invalid_grant", "The login was revoked. Run `cto login`.");
    }
    let Some(grant) = lock(&st.cli).refresh(presented, st.cfg.cli_token_ttl, Instant::now()) else {
        // Spent by a concurrent refresh between the two locks.
        return oauth_error(
            "invalid_grant",
            "The refresh token is invalid, expired or already used.",
        );
    };
    *lock(&st.stats)
        .cli_refreshes
        .entry(grant.user_id.clone())
        .or_default() += 1;
    Json(json!({
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "expires_in": st.cfg.cli_token_ttl.as_secs(),
        "token_type": "Bearer",
    }))
    .into_response()
}

/// The user of a valid, unexpired `Authorization: Bearer <access token>`, or the 401 to answer
/// (counted in `cli_rejected_tokens`).
pub(crate) fn authorize(st: &SimState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let token = crate::simulator::util::bearer(headers).unwrap_or("");
    if let Some(user) = lock(&st.cli).check(token, Instant::now()) {
        return Ok(user.to_owned());
    }
    lock(&st.stats).cli_rejected_tokens += 1;
    let mut resp = openai_error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "invalid_token",
        "The access token is invalid or has expired.",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    Err(Box::new(resp))
}
