//! Clerk's Frontend API: session discovery (`GET /v1/client`) and single-flight JWT minting
//! (`POST /v1/client/sessions/{sid}/tokens`) for an [`Account`].
//!
//! Every Clerk answer may rotate `__client` through `Set-Cookie`; losing a rotation leads to
//! "signed out" later, so each one is adopted by the account (which publishes it).

use std::sync::atomic::Ordering;

use serde_json::Value;

pub use super::account::{Account, Identity};
use super::account::{CachedJwt, lock};
use super::answer;
use super::transport::{Reply, Request, Transport};
use super::{UpstreamConfig, UpstreamError, cookie, jwt};

/// The query string every FAPI call carries.
fn fapi_url(cfg: &UpstreamConfig, path: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("__clerk_api_version", &cfg.clerk_api_version);
    q.append_pair("_clerk_js_version", &cfg.clerk_js_version);
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("{}/v1{}?{}", cfg.clerk_base_url, path, q.finish())
}

/// Headers a browser on cto.new sends to Clerk.
fn browser(cfg: &UpstreamConfig, account: &Account, req: Request) -> Request {
    req.header(
        ::http::header::COOKIE,
        format!(
            "{}={}",
            cookie::CLIENT_COOKIE,
            account.current_client_cookie()
        ),
    )
    .header(::http::header::ORIGIN, &cfg.origin)
    .header(::http::header::REFERER, format!("{}/", cfg.origin))
    .header(::http::header::USER_AGENT, &cfg.user_agent)
    .header(::http::header::ACCEPT, "*/*")
}

/// Clerk's first error code (`errors[0].code`), if the body carries one.
fn clerk_error_code(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v.get("errors")?
        .get(0)?
        .get("code")?
        .as_str()
        .map(str::to_string)
}

/// Maps a non-success Clerk answer. Bodies are not echoed: only Clerk's error code.
fn clerk_failure(call: &'static str, reply: &Reply) -> UpstreamError {
    let code = clerk_error_code(&reply.body).unwrap_or_else(|| "no error code".to_string());
    match reply.status {
        401 | 403 => UpstreamError::CookieRejected {
            detail: format!("{call} answered {}: {code}", reply.status),
        },
        429 => UpstreamError::RateLimited {
            what: format!("Clerk {call}"),
            retry_after: answer::retry_after(&reply.headers),
        },
        status => UpstreamError::Status {
            call,
            status,
            body: code,
        },
    }
}

/// `GET /v1/client`: finds the signed-in session, user and org behind the cookie and stores
/// them on the account.
pub async fn discover(
    http_client: &Transport,
    cfg: &UpstreamConfig,
    account: &Account,
) -> Result<Identity, UpstreamError> {
    const CALL: &str = "clerk /v1/client";
    let req = browser(cfg, account, Request::get(fapi_url(cfg, "/client", &[])));
    let reply = http_client.send(CALL, req).await?;
    account.adopt_cookies(&reply);
    if !reply.is_success() {
        return Err(clerk_failure(CALL, &reply));
    }
    let body: Value = serde_json::from_str(&reply.body).map_err(|_| UpstreamError::Protocol {
        call: CALL,
        detail: "the answer is not JSON".to_string(),
    })?;
    let identity = identity_from_client(&body)?;
    *lock(&account.identity) = Some(identity.clone());
    *lock(&account.session_hint) = Some(identity.session_id.clone());
    Ok(identity)
}

/// Picks the session of a `/v1/client` answer (see the protocol notes, §2.3).
fn identity_from_client(body: &Value) -> Result<Identity, UpstreamError> {
    let signed_out = |why: &str| UpstreamError::CookieRejected {
        detail: format!("Clerk reports the browser session as signed out ({why})"),
    };
    let client = body
        .get("response")
        .filter(|r| !r.is_null())
        .ok_or_else(|| signed_out("no client"))?;
    let sessions = client
        .get("sessions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let usable = |s: &&Value| {
        matches!(
            s.get("status").and_then(Value::as_str),
            Some("active" | "pending")
        )
    };
    let last = client.get("last_active_session_id").and_then(Value::as_str);
    let session = last
        .and_then(|id| {
            sessions
                .iter()
                .find(|s| s.get("id").and_then(Value::as_str) == Some(id))
        })
        .filter(|s| s.get("status").is_none() || usable(s))
        .or_else(|| sessions.iter().find(usable))
        .ok_or_else(|| signed_out("no active session"))?;
    let session_id = session
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| signed_out("session without id"))?
        .to_string();
    let user = session.get("user");
    let user_id = user
        .and_then(|u| u.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| UpstreamError::Protocol {
            call: "clerk /v1/client",
            detail: "the session carries no user id".to_string(),
        })?
        .to_string();
    let org_id = session
        .get("last_active_organization_id")
        .and_then(Value::as_str)
        .or_else(|| {
            user?
                .get("organization_memberships")?
                .get(0)?
                .get("organization")?
                .get("id")?
                .as_str()
        })
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(Identity {
        session_id,
        user_id,
        org_id,
    })
}

/// What one mint attempt came back with.
enum Minted {
    Token(String),
    /// 404: the session id is unknown (re-login elsewhere): rediscover.
    SessionGone,
    /// 422 `missing_expired_token`: Clerk wants the previous token.
    WantsExpiredToken,
}

/// Returns a JWT for the account: the cached one while it has time left, else one minted now.
/// Concurrent callers share one mint.
pub async fn jwt(
    http_client: &Transport,
    cfg: &UpstreamConfig,
    account: &Account,
) -> Result<String, UpstreamError> {
    if let Some(token) = account.fresh_jwt() {
        return Ok(token);
    }
    let _single_flight = account.mint_lock.lock().await;
    if let Some(token) = account.fresh_jwt() {
        return Ok(token);
    }
    let mut session = match (account.identity(), lock(&account.session_hint).clone()) {
        (Some(id), _) => Some((id.session_id, TokenOrg::of(id.org_id))),
        (None, Some(sid)) => Some((sid, TokenOrg::Unknown)),
        (None, None) => None,
    };
    if session.is_none() {
        let id = discover(http_client, cfg, account).await?;
        session = Some((id.session_id, TokenOrg::of(id.org_id)));
    }
    let (mut sid, mut org) = session.unwrap_or_default();
    let mut rediscovered = false;
    let mut expired_token: Option<String> = None;
    loop {
        match mint_once(
            http_client,
            cfg,
            account,
            &sid,
            &org,
            expired_token.as_deref(),
        )
        .await?
        {
            Minted::Token(token) => {
                return adopt_token(http_client, cfg, account, &sid, token).await;
            }
            Minted::SessionGone if !rediscovered => {
                rediscovered = true;
                tracing::debug!(account = %account.label(), "Clerk does not know the session; rediscovering");
                let id = discover(http_client, cfg, account).await?;
                sid = id.session_id;
                org = TokenOrg::of(id.org_id);
            }
            Minted::SessionGone => {
                return Err(UpstreamError::CookieRejected {
                    detail: "Clerk does not know the session even after rediscovery".to_string(),
                });
            }
            Minted::WantsExpiredToken if expired_token.is_none() => {
                match lock(&account.last_jwt).clone() {
                    Some(last) => expired_token = Some(last),
                    None => {
                        return Err(UpstreamError::CookieRejected {
                            detail: "Clerk wants the previous token (missing_expired_token) and none is known".to_string(),
                        });
                    }
                }
            }
            Minted::WantsExpiredToken => {
                return Err(UpstreamError::CookieRejected {
                    detail: "Clerk refused the token refresh (missing_expired_token)".to_string(),
                });
            }
        }
    }
}

/// Caches a fresh token and fills in the identity from its claims when it is not known yet.
async fn adopt_token(
    http_client: &Transport,
    cfg: &UpstreamConfig,
    account: &Account,
    sid: &str,
    token: String,
) -> Result<String, UpstreamError> {
    let claims = jwt::decode_claims(&token)?;
    account.mints.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(crate::metrics::JWT_MINTS).increment(1);
    if account.identity().is_none() {
        match claims.sub.clone() {
            Some(user_id) => {
                *lock(&account.identity) = Some(Identity {
                    session_id: claims.sid.clone().unwrap_or_else(|| sid.to_string()),
                    user_id,
                    org_id: claims.org_id.clone(),
                });
            }
            None => {
                discover(http_client, cfg, account).await?;
            }
        }
    }
    *lock(&account.last_jwt) = Some(token.clone());
    *lock(&account.jwt) = Some(CachedJwt {
        token: token.clone(),
        claims,
    });
    Ok(token)
}

/// Which organization a token is minted for.
#[derive(Debug, Clone, Default)]
enum TokenOrg {
    /// Not known yet (a persisted session id only): `organization_id` is left out, so Clerk
    /// uses the session's active org instead of switching to the personal account.
    #[default]
    Unknown,
    /// The personal account: `organization_id` sent empty.
    Personal,
    Org(String),
}

impl TokenOrg {
    /// The org of a known identity (`None`: its personal account).
    fn of(org_id: Option<String>) -> Self {
        org_id.map_or(TokenOrg::Personal, TokenOrg::Org)
    }
}

async fn mint_once(
    http_client: &Transport,
    cfg: &UpstreamConfig,
    account: &Account,
    sid: &str,
    org: &TokenOrg,
    expired_token: Option<&str>,
) -> Result<Minted, UpstreamError> {
    const CALL: &str = "clerk tokens";
    let extra: Vec<(&str, &str)> = expired_token
        .map(|t| vec![("expired_token", t)])
        .unwrap_or_default();
    let path = format!("/client/sessions/{}/tokens", urlencode(sid));
    // Built in a block: the serializer is not `Send` and must not live across an await.
    let form = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        match org {
            TokenOrg::Unknown => {}
            TokenOrg::Personal => {
                form.append_pair("organization_id", "");
            }
            TokenOrg::Org(id) => {
                form.append_pair("organization_id", id);
            }
        }
        form.finish()
    };
    let req = browser(
        cfg,
        account,
        Request::new(::http::Method::POST, fapi_url(cfg, &path, &extra)),
    )
    .body("application/x-www-form-urlencoded", form);
    let reply = http_client.send(CALL, req).await?;
    account.adopt_cookies(&reply);
    if reply.is_success() {
        let body: Value =
            serde_json::from_str(&reply.body).map_err(|_| UpstreamError::Protocol {
                call: CALL,
                detail: "the answer is not JSON".to_string(),
            })?;
        // Bare `{"jwt": ...}`; tolerate an envelope in case Clerk ever adds one.
        let token = body
            .get("jwt")
            .or_else(|| body.get("response").and_then(|r| r.get("jwt")))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| UpstreamError::Protocol {
                call: CALL,
                detail: "the answer carries no jwt".to_string(),
            })?;
        return Ok(Minted::Token(token.to_string()));
    }
    match reply.status {
        404 => Ok(Minted::SessionGone),
        422 if clerk_error_code(&reply.body).as_deref() == Some("missing_expired_token") => {
            Ok(Minted::WantsExpiredToken)
        }
        _ => Err(clerk_failure(CALL, &reply)),
    }
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_last_active_session_and_its_org() {
        let body = json!({"response": {
        "last_active_session_id": "sess_2",
        "sessions": [
            {"id": "sess_1", "status": "active", "user": {"id": "user_1"}},
            {"id": "sess_2", "status": "active", "last_active_organization_id": "org_2",
             "user": {"id": "user_2"}}
        ]}});
        let id = identity_from_client(&body).expect("identity");
        assert_eq!(
            id,
            Identity {
                session_id: "sess_2".into(),
                user_id: "user_2".into(),
                org_id: Some("org_2".into())
            }
        );
    }

    #[test]
    fn falls_back_to_first_active_session_and_membership_org() {
        let body = json!({"response": {
        "last_active_session_id": null,
        "sessions": [
            {"id": "sess_0", "status": "ended", "user": {"id": "user_0"}},
            {"id": "sess_1", "status": "pending", "last_active_organization_id": null,
             "user": {"id": "user_1", "organization_memberships": [
                {"organization": {"id": "org_m"}}]}}
        ]}});
        let id = identity_from_client(&body).expect("identity");
        assert_eq!(id.session_id, "sess_1");
        assert_eq!(id.org_id.as_deref(), Some("org_m"));
    }

    #[test]
    fn signed_out_clients_reject_the_cookie() {
        for body in [
            json!({"response": null, "client": null}),
            json!({"response": {"last_active_session_id": null, "sessions": []}}),
            json!({"response": {"sessions": [{"id": "s", "status": "revoked", "user": {"id": "u"}}]}}),
            json!({}),
        ] {
            assert!(
                matches!(
                    identity_from_client(&body),
                    Err(UpstreamError::CookieRejected { .. })
                ),
                "{body}"
            );
        }
    }
}
