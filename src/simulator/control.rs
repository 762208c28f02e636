//! The control plane under `/__sim` for out-of-process users (the benchmark, SDK tests): read
//! counters, replace faults, add accounts, revoke/restore them, replace a session. Also the
//! Cloudflare-challenge fault, a middleware over the Clerk and EngineLabs REST routes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::respond::message;
use super::state::{Account, SimState};
use super::util::{lock, random_alnum};
use super::{Faults, SimAccount};

/// `GET /__sim/stats`: counters; the trigger list only with `?triggers=1`, the CLI completion
/// records only with `?completions=1` (both can be long).
pub(crate) async fn stats(
    State(st): State<Arc<SimState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let wants = |name: &str| q.get(name).is_some_and(|v| v == "1" || v == "true");
    let stats = lock(&st.stats).clone();
    let mut v = serde_json::to_value(&stats).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        for (param, field) in [("triggers", "triggers"), ("completions", "cli_completions")] {
            if !wants(param) {
                map.remove(field);
            }
        }
    }
    Json(v).into_response()
}

/// `POST /__sim/faults`: replaces every fault with the posted set (missing fields = off).
pub(crate) async fn set_faults(State(st): State<Arc<SimState>>, Json(f): Json<Faults>) -> Response {
    *lock(&st.faults) = f;
    Json(json!({})).into_response()
}

/// `GET /__sim/faults`.
pub(crate) async fn get_faults(State(st): State<Arc<SimState>>) -> Response {
    Json(lock(&st.faults).clone()).into_response()
}

/// Adds an account and returns its public view.
pub(crate) fn add_account(st: &SimState) -> SimAccount {
    let acc = Account::new();
    let public = acc.public();
    lock(&st.inner).accounts.insert(acc.user_id.clone(), acc);
    public
}

/// `POST /__sim/accounts`.
pub(crate) async fn create_account(State(st): State<Arc<SimState>>) -> Response {
    (StatusCode::CREATED, Json(add_account(&st))).into_response()
}

/// `GET /__sim/accounts`: every account, the one created at start first.
pub(crate) async fn list_accounts(State(st): State<Arc<SimState>>) -> Response {
    let inner = lock(&st.inner);
    let mut list: Vec<SimAccount> = Vec::new();
    if let Some(first) = inner.accounts.get(&inner.first_user) {
        list.push(first.public());
    }
    list.extend(
        inner
            .accounts
            .values()
            .filter(|a| a.user_id != inner.first_user)
            .map(Account::public),
    );
    Json(list).into_response()
}

/// Sets the revoked flag; false when the user does not exist.
pub(crate) fn set_revoked(st: &SimState, user_id: &str, revoked: bool) -> bool {
    match lock(&st.inner).accounts.get_mut(user_id) {
        Some(acc) => {
            acc.revoked = revoked;
            true
        }
        None => false,
    }
}

/// Gives the user a new session id; the old one then answers 404 on mint.
pub(crate) fn replace_session(st: &SimState, user_id: &str) -> Option<String> {
    let mut inner = lock(&st.inner);
    let acc = inner.accounts.get_mut(user_id)?;
    acc.session_id = format!("sess_{}", random_alnum(27));
    Some(acc.session_id.clone())
}

/// `POST /__sim/accounts/{user_id}/{action}` with action `revoke`, `restore`, `replace-session`,
/// `cli-login` (answers the new [`super::SimCliAccount`]).
pub(crate) async fn account_action(
    State(st): State<Arc<SimState>>,
    Path((user_id, action)): Path<(String, String)>,
) -> Response {
    let found = match action.as_str() {
        "revoke" => set_revoked(&st, &user_id, true),
        "restore" => set_revoked(&st, &user_id, false),
        "replace-session" => {
            return match replace_session(&st, &user_id) {
                Some(sid) => Json(json!({"session_id": sid})).into_response(),
                None => message(StatusCode::NOT_FOUND, "no such user"),
            };
        }
        "cli-login" => {
            return match super::cli::login(&st, &user_id) {
                Some(acc) => Json(acc).into_response(),
                None => message(StatusCode::NOT_FOUND, "no such user"),
            };
        }
        _ => return message(StatusCode::NOT_FOUND, "unknown action"),
    };
    if found {
        Json(json!({})).into_response()
    } else {
        message(StatusCode::NOT_FOUND, "no such user")
    }
}

/// Remembers how each surface's last caller presented itself (`SimStats::clients`).
pub(crate) async fn record_client(
    State(st): State<Arc<SimState>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let surface = if path.starts_with("/v1/") {
        "clerk"
    } else if matches!(path, "/oauth/token" | "/models" | "/chat/completions") {
        "cli"
    } else if path.ends_with("/buffer/stream") {
        "websocket"
    } else if path.starts_with("/__uploads/") {
        "upload"
    } else if path.starts_with("/cdn/") {
        "cdn"
    } else {
        "engine"
    };
    let h = req.headers();
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let seen = super::SeenClient {
        user_agent: get("user-agent"),
        sec_ch_ua: get("sec-ch-ua"),
        sec_fetch_mode: get("sec-fetch-mode"),
        sec_fetch_site: get("sec-fetch-site"),
        origin: get("origin"),
    };
    lock(&st.stats).clients.insert(surface.to_string(), seen);
    next.run(req).await
}

/// With `Faults::cloudflare_challenge`, answers every REST call with a Cloudflare challenge page.
pub(crate) async fn cloudflare(
    State(st): State<Arc<SimState>>,
    req: Request,
    next: Next,
) -> Response {
    if !lock(&st.faults).cloudflare_challenge {
        return next.run(req).await;
    }
    let body = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>\
                <script src=\"/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1\"></script>\
                </body></html>";
    let mut resp = (StatusCode::FORBIDDEN, body).into_response();
    let h = resp.headers_mut();
    h.insert("cf-mitigated", HeaderValue::from_static("challenge"));
    h.insert("cf-ray", HeaderValue::from_static("8f0000000000000-SIM"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    resp
}
