//! The simulated Clerk Frontend API: `GET /v1/client` (session discovery) and
//! `POST /v1/client/sessions/{sid}/tokens` (JWT mint with optional `__client` rotation).
//!
//! Shapes follow the protocol notes §2.3, §2.4 and §2.6: the client comes in the
//! `{"response": …, "client": null}` envelope, the token comes bare, errors are Clerk's
//! `{"errors": [...], "clerk_trace_id": …}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::jwt::MintRequest;
use super::state::{Account, Inner, SimState};
use super::util::{lock, now_ms, now_secs, random_alnum};

/// A Clerk error body with one error.
fn clerk_error(status: StatusCode, code: &str, message: &str, long: &str) -> Response {
    let body = json!({
        "errors": [{"code": code, "message": message, "long_message": long, "meta": {}}],
        "clerk_trace_id": random_alnum(32),
    });
    (status, axum::Json(body)).into_response()
}

fn signed_out() -> Response {
    clerk_error(
        StatusCode::UNAUTHORIZED,
        "signed_out",
        "Signed out",
        "You are signed out. Sign in again to continue.",
    )
}

/// The `__client` value from the request's `Cookie` header(s), if any.
pub(crate) fn client_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.trim() == "__client")
        .map(|(_, value)| value.trim().to_owned())
}

/// The user id of the account whose current or grace cookie is `value`.
fn account_for_cookie<'a>(inner: &'a mut Inner, value: &str) -> Option<&'a mut Account> {
    inner
        .accounts
        .values_mut()
        .find(|a| a.accepts_cookie(value))
}

/// `GET /v1/client`.
pub(crate) async fn get_client(State(st): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    lock(&st.stats).client_calls += 1;
    let Some(cookie) = client_cookie(&headers) else {
        return signed_out();
    };
    let empty_for_revoked = lock(&st.faults).revoked_as_empty_client;
    let mut inner = lock(&st.inner);
    let Some(acc) = account_for_cookie(&mut inner, &cookie) else {
        return signed_out();
    };
    let client_id = format!("client_{}", &acc.user_id[5..]);
    if acc.revoked {
        if !empty_for_revoked {
            return signed_out();
        }
        let body = json!({
            "response": {
                "object": "client", "id": client_id, "last_active_session_id": null,
                "sessions": [], "sign_in": null, "sign_up": null,
                "created_at": acc.created_ms, "updated_at": now_ms(),
            },
            "client": null,
        });
        return axum::Json(body).into_response();
    }
    let now = now_secs();
    // Minted an hour ago: already expired, as in a browser's stale client object.
    let stale_jwt = st.jwt.mint(&MintRequest {
        user_id: &acc.user_id,
        session_id: &acc.session_id,
        org_id: &acc.org_id,
        origin: None,
        iat: now.saturating_sub(3600),
        ttl_secs: st.cfg.token_ttl.as_secs().max(1),
    });
    let now_ms = now_ms();
    let session = json!({
        "object": "session",
        "id": acc.session_id,
        "status": "active",
        "expire_at": now_ms + 7 * 86_400_000,
        "abandon_at": now_ms + 30 * 86_400_000,
        "last_active_at": now_ms,
        "last_active_organization_id": acc.org_id,
        "last_active_token": {"object": "token", "jwt": stale_jwt},
        "factor_verification_age": [12, -1],
        "actor": null,
        "tasks": null,
        "user": {
            "object": "user",
            "id": acc.user_id,
            "organization_memberships": [{
                "object": "organization_membership",
                "id": format!("orgmem_{}", random_alnum(20)),
                "role": "org:admin",
                "organization": {"object": "organization", "id": acc.org_id,
                                 "slug": "sim", "name": "Simulated team"},
            }],
        },
        "public_user_data": {"identifier": "sim@example.invalid"},
        "created_at": acc.created_ms,
        "updated_at": now_ms,
    });
    let body = json!({
        "response": {
            "object": "client",
            "id": client_id,
            "last_active_session_id": acc.session_id,
            "sessions": [session],
            "sign_in": null,
            "sign_up": null,
            "last_authentication_strategy": "oauth_google",
            "cookie_expires_at": now_ms + 365 * 86_400_000,
            "created_at": acc.created_ms,
            "updated_at": now_ms,
        },
        "client": null,
    });
    axum::Json(body).into_response()
}

/// `POST /v1/client/sessions/{sid}/tokens`.
pub(crate) async fn mint_token(
    State(st): State<Arc<SimState>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(cookie) = client_cookie(&headers) else {
        return signed_out();
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut inner = lock(&st.inner);
    let Some(acc) = account_for_cookie(&mut inner, &cookie) else {
        return signed_out();
    };
    if acc.revoked {
        return signed_out();
    }
    if acc.session_id != sid {
        return clerk_error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "not found",
            "No session was found with this id.",
        );
    }
    // Form body, every field optional; anything unparsable counts as empty, like Clerk.
    let org = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "organization_id")
        .map(|(_, v)| v.into_owned())
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| acc.org_id.clone());
    let jwt = st.jwt.mint(&MintRequest {
        user_id: &acc.user_id,
        session_id: &acc.session_id,
        org_id: &org,
        origin: origin.as_deref(),
        iat: now_secs(),
        ttl_secs: st.cfg.token_ttl.as_secs().max(1),
    });
    let rotated = st.cfg.rotate_cookies.then(|| acc.rotate_cookie());
    drop(inner);
    lock(&st.stats).mints += 1;
    let mut resp = axum::Json(json!({"object": "token", "jwt": jwt})).into_response();
    if let Some(value) = rotated {
        let set = format!("__client={value}; Path=/; HttpOnly; Secure; SameSite=Lax");
        if let Ok(v) = HeaderValue::from_str(&set) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_client_among_browser_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__client_uat=1; __client=abc=def; __session=x"),
        );
        assert_eq!(client_cookie(&h).as_deref(), Some("abc=def"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("__client_uat=1"));
        assert_eq!(client_cookie(&h), None);
    }
}
