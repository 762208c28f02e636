//! The CLI door's OAuth tokens: one live refresh token per logged-in account that rotates on
//! every use, and short-lived access tokens (protocol notes §10). `POST /oauth/token` and the
//! bearer check of the other CLI routes live here.
//!
//! [`Logins`] is plain data with the clock passed in, so the rotation and expiry rules are unit
//! tested without sleeping; the handlers only add locking, faults and counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::openai_error;
use crate::simulator::SimCliAccount;
use crate::simulator::state::{SimState, lock, random_alnum};

/// The CLI logins of every account.
#[derive(Default)]
pub(crate) struct Logins {
    /// Live refresh token → user id. A spent token is removed, so it is simply unknown.
    refresh: HashMap<String, String>,
    /// User id → its live refresh token.
    by_user: HashMap<String, String>,
    /// Access token → whom it authorises and until when.
    access: HashMap<String, Access>,
}

struct Access {
    user_id: String,
    expires: Instant,
}

/// What a successful refresh hands out.
#[derive(Debug)]
pub(crate) struct Grant {
    pub user_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Logins {
    /// A new refresh token for `user_id` (what `cto login` stores); the previous one dies.
    pub fn login(&mut self, user_id: &str) -> String {
        let token = format!("cto_rt_{}", random_alnum(40));
        if let Some(old) = self.by_user.insert(user_id.to_owned(), token.clone()) {
            self.refresh.remove(&old);
        }
        self.refresh.insert(token.clone(), user_id.to_owned());
        token
    }

    /// The live refresh token of `user_id`, if it logged in.
    pub fn current(&self, user_id: &str) -> Option<&str> {
        self.by_user.get(user_id).map(String::as_str)
    }

    /// The user of a live refresh token, without spending it.
    pub fn owner(&self, refresh_token: &str) -> Option<&str> {
        self.refresh.get(refresh_token).map(String::as_str)
    }

    /// Spends `refresh_token`: a new refresh token replaces it and an access token valid for
    /// `ttl` from `now` is issued. `None` for a spent or unknown token.
    pub fn refresh(&mut self, refresh_token: &str, ttl: Duration, now: Instant) -> Option<Grant> {
        let user_id = self.refresh.remove(refresh_token)?;
        self.by_user.remove(&user_id);
        let refresh_token = self.login(&user_id);
        self.access.retain(|_, a| a.expires > now);
        let access_token = format!("cto_at_{}", random_alnum(40));
        self.access.insert(
            access_token.clone(),
            Access {
                user_id: user_id.clone(),
                expires: now + ttl,
            },
        );
        Some(Grant {
            user_id,
            access_token,
            refresh_token,
        })
    }

    /// The user an access token authorises at `now`.
    pub fn check(&self, access_token: &str, now: Instant) -> Option<&str> {
        self.access
            .get(access_token)
            .filter(|a| a.expires > now)
            .map(|a| a.user_id.as_str())
    }
}

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
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
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

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_refresh_rotates_and_the_spent_token_is_refused() {
        let mut l = Logins::default();
        let first = l.login("user_a");
        let now = Instant::now();
        let grant = l.refresh(&first, TTL, now).expect("live token");
        assert_eq!(grant.user_id, "user_a");
        assert_ne!(grant.refresh_token, first);
        assert_eq!(l.current("user_a"), Some(grant.refresh_token.as_str()));
        assert!(l.refresh(&first, TTL, now).is_none());
        assert!(l.refresh(&grant.refresh_token, TTL, now).is_some());
    }

    #[test]
    fn a_new_login_kills_the_previous_refresh_token() {
        let mut l = Logins::default();
        let old = l.login("user_a");
        let new = l.login("user_a");
        assert!(l.owner(&old).is_none());
        assert_eq!(l.owner(&new), Some("user_a"));
    }

    #[test]
    fn access_tokens_expire_and_unknown_ones_are_refused() {
        let mut l = Logins::default();
        let rt = l.login("user_a");
        let now = Instant::now();
        let grant = l.refresh(&rt, TTL, now).expect("live token");
        assert_eq!(l.check(&grant.access_token, now), Some("user_a"));
        assert_eq!(l.check(&grant.access_token, now + TTL), None);
        assert_eq!(l.check("cto_at_forged", now), None);
        // Expired tokens are dropped at the next refresh.
        let _ = l.refresh(&grant.refresh_token, TTL, now + TTL * 2);
        assert_eq!(l.access.len(), 1);
    }
}
