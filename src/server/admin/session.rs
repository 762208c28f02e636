//! Admin page sessions: the login form trades the ADMIN_KEY for a signed token sent back as
//! an HttpOnly, SameSite=Strict cookie scoped to `/admin`.
//!
//! The token is `<expiry>.<nonce>.<HMAC-SHA256 of both>`. The MAC key is an HMAC of ADMIN_KEY
//! under a random 32-byte secret the store keeps ([`Store::secret`], created on first start).
//! So a leaked cookie does not let anyone test guesses of ADMIN_KEY offline (they would need
//! the store's secret too); every replica sharing the store (Redis) accepts the token, so behind
//! a load balancer the page does not bounce between logged in and out; a restart with a durable
//! store does not log anybody out; and changing ADMIN_KEY logs everybody out. When the store
//! cannot give its secret (Redis down at start), a random one is used and sessions last until
//! the restart on this replica only, which is logged.
//!
//! Checks compare the MAC in constant time and refuse an expiry further away than a fresh
//! login gives (plus clock skew between replicas), so a token is never good for longer than
//! [`SESSION_TTL`] whatever its signer wrote. Logging out revokes the token on the replica that
//! served the logout (a list of revoked digests kept until their expiry); other replicas accept
//! it until it expires, which the README states.
//!
//! [`session_allows`] is the admin API's check of such a cookie (with the CSRF header rule); it
//! lives here, beside the API, so the page builds on the API and not the other way round.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::Request;
use axum::http::header::COOKIE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::conversation::fingerprint::hex;
use crate::store::Store;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "el2a_admin";
/// How long a session lives after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How far ahead of this replica's clock another replica's may run when it signs a token.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Most revoked tokens remembered; beyond it the ones closest to expiry are forgotten first.
const MAX_REVOKED: usize = 1024;
/// Name of the store's secret the MAC key is derived from.
const SECRET_NAME: &str = "admin-session";

/// Signs and checks the session tokens of one application (kept in the `AppState`, handed to
/// the router through an `Extension`).
pub struct Sessions {
    /// HMAC key derived from ADMIN_KEY and the store's secret; random without ADMIN_KEY (no
    /// token can be made then anyway).
    key: [u8; 32],
    /// Digests of logged-out tokens with their expiry (unix seconds).
    revoked: Mutex<Vec<([u8; 32], u64)>>,
}

impl Sessions {
    /// The sessions of `admin_key`, signed with a key derived from the store's secret.
    pub async fn load(admin_key: Option<&str>, store: &dyn Store) -> Sessions {
        let Some(admin_key) = admin_key else {
            return Sessions::with_key(rand::random());
        };
        let fresh: [u8; 32] = rand::random();
        let secret = match store.secret(SECRET_NAME, &fresh).await {
            Ok(secret) if secret.len() >= 32 => secret,
            Ok(_) => {
                tracing::warn!(
                    "the store's admin session secret is too short; using a random one (page sessions end at restart and work on this replica only)"
                );
                fresh.to_vec()
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the admin session secret from the store; using a random one (page sessions end at restart and work on this replica only)");
                fresh.to_vec()
            }
        };
        Sessions::with_secret(admin_key, &secret)
    }

    /// The MAC key: HMAC-SHA256 of ADMIN_KEY under the secret.
    pub fn with_secret(admin_key: &str, secret: &[u8]) -> Sessions {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
        mac.update(b"el2a-admin-session:");
        mac.update(admin_key.as_bytes());
        Sessions::with_key(mac.finalize().into_bytes().into())
    }

    fn with_key(key: [u8; 32]) -> Sessions {
        Sessions {
            key,
            revoked: Mutex::new(Vec::new()),
        }
    }

    /// Opens a session; returns the token for the cookie.
    pub fn open(&self) -> String {
        self.open_until(unix_now() + SESSION_TTL.as_secs())
    }

    fn open_until(&self, expiry: u64) -> String {
        let nonce: [u8; 16] = rand::random();
        let payload = format!("{expiry}.{}", hex(&nonce));
        format!("{payload}.{}", hex(&self.mac(&payload)))
    }

    fn mac(&self, payload: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The expiry of a well-signed, unexpired, unrevoked token whose expiry is no further away
    /// than a login gives.
    fn check(&self, token: &str) -> Option<u64> {
        let (payload, sig) = token.rsplit_once('.')?;
        let good = hex(&self.mac(payload));
        // Constant time over the whole signature; a length mismatch fails (no early exit).
        if !bool::from(good.as_bytes().ct_eq(sig.as_bytes())) {
            return None;
        }
        let expiry: u64 = payload.split_once('.')?.0.parse().ok()?;
        let now = unix_now();
        let latest = now + SESSION_TTL.as_secs() + CLOCK_SKEW.as_secs();
        if expiry <= now || expiry > latest {
            return None;
        }
        let d = digest(token);
        let revoked = self.revoked.lock().ok()?;
        let mut hit = false;
        for (k, _) in revoked.iter() {
            hit |= bool::from(k.ct_eq(&d));
        }
        (!hit).then_some(expiry)
    }

    /// Whether the request carries the cookie of a live session.
    pub fn valid(&self, headers: &HeaderMap) -> bool {
        token_of(headers).is_some_and(|t| self.check(&t).is_some())
    }

    /// Ends the session of the request's cookie, if any.
    pub fn close(&self, headers: &HeaderMap) {
        let Some(t) = token_of(headers) else { return };
        let Some(expiry) = self.check(&t) else { return };
        let now = unix_now();
        if let Ok(mut revoked) = self.revoked.lock() {
            revoked.retain(|(_, exp)| *exp > now);
            if revoked.len() >= MAX_REVOKED {
                revoked.sort_by_key(|(_, exp)| *exp);
                revoked.remove(0);
            }
            revoked.push((digest(&t), expiry));
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The session token from the `Cookie` header(s).
fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value for a new session. `secure` adds `Secure` (behind HTTPS).
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={token}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Header a cookie-authenticated state-changing call must carry (`1`): cross-site forms can't.
pub const CSRF_HEADER: &str = "x-admin-request";

/// Whether the request's session cookie lets it through: `None` without a live session,
/// `Some(Err(403))` for a state-changing call without [`CSRF_HEADER`], else `Some(Ok(()))`.
pub fn session_allows(req: &Request) -> Option<Result<(), Response>> {
    let sessions = req.extensions().get::<Arc<Sessions>>()?;
    if !sessions.valid(req.headers()) {
        return None;
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let marked = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1");
    if safe || marked {
        Some(Ok(()))
    } else {
        Some(Err(csrf_refusal()))
    }
}

fn csrf_refusal() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({"error": {
            "message": "a state-changing admin call made with the page's session cookie must carry the header `X-Admin-Request: 1`",
            "type": "invalid_request_error",
            "param": null,
            "code": "admin_csrf",
        }})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(v).expect("header"));
        h
    }

    const SECRET: &[u8] = &[9u8; 32];

    fn sessions(admin_key: &str) -> Sessions {
        Sessions::with_secret(admin_key, SECRET)
    }

    #[test]
    fn a_session_is_valid_until_closed() {
        let s = sessions("k");
        let t = s.open();
        let h = with_cookie(&format!("other=1; {COOKIE_NAME}={t}"));
        assert!(s.valid(&h));
        assert!(!s.valid(&with_cookie(&format!("{COOKIE_NAME}={}", "0".repeat(64)))));
        assert!(!s.valid(&HeaderMap::new()));
        s.close(&h);
        assert!(!s.valid(&h));
    }

    #[test]
    fn the_key_and_the_secret_both_make_the_mac_key() {
        let a = sessions("shared");
        let t = a.open();
        let h = with_cookie(&format!("{COOKIE_NAME}={t}"));
        assert!(sessions("shared").valid(&h), "restart or replica");
        assert!(!sessions("changed").valid(&h), "a new ADMIN_KEY logs out");
        assert!(
            !Sessions::with_secret("shared", &[8u8; 32]).valid(&h),
            "ADMIN_KEY alone does not make the key"
        );
        // Not the old derivation (a plain hash of the key), which a cookie let anyone test.
        let old: [u8; 32] = Sha256::digest(b"el2a-admin-session:shared").into();
        assert!(!Sessions::with_key(old).valid(&h));
    }

    #[tokio::test]
    async fn the_secret_comes_from_the_store_and_stays() {
        let store = crate::store::MemoryStore::new(Default::default());
        let a = Sessions::load(Some("k"), &store).await;
        let h = with_cookie(&format!("{COOKIE_NAME}={}", a.open()));
        assert!(Sessions::load(Some("k"), &store).await.valid(&h));
        let other = crate::store::MemoryStore::new(Default::default());
        assert!(!Sessions::load(Some("k"), &other).await.valid(&h));
        assert!(!Sessions::load(None, &store).await.valid(&h));
    }

    #[test]
    fn a_far_future_expiry_is_not_accepted_even_when_signed() {
        let s = sessions("k");
        let far = s.open_until(unix_now() + 10 * 365 * 86_400);
        assert!(s.check(&far).is_none());
        let beyond = unix_now() + SESSION_TTL.as_secs() + CLOCK_SKEW.as_secs() + 5;
        assert!(s.check(&s.open_until(beyond)).is_none());
        let skewed = s.open_until(unix_now() + SESSION_TTL.as_secs() + 60);
        assert!(
            s.check(&skewed).is_some(),
            "signed by a replica a minute ahead"
        );
    }

    #[test]
    fn forged_tampered_and_expired_tokens_fail() {
        let s = sessions("k");
        let t = s.open();
        let (expiry, rest) = t.split_once('.').expect("expiry");
        let later: u64 = expiry.parse::<u64>().expect("number") + 1_000_000;
        let tampered = format!("{later}.{rest}");
        assert!(
            s.check(&tampered).is_none(),
            "a longer life is not for free"
        );
        let truncated = &t[..t.len() - 2];
        assert!(s.check(truncated).is_none());
        assert!(s.check("1.2.3").is_none());
        assert!(s.check("").is_none());
        let expired = s.open_until(unix_now() - 1);
        assert!(s.check(&expired).is_none());
        assert!(s.check(&t).is_some());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped() {
        let c = set_cookie("abc", false);
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/admin")
        );
        assert!(!c.contains("Secure"));
        assert!(set_cookie("abc", true).ends_with("; Secure"));
    }
}
