//! Admin page sessions: the login form trades the ADMIN_KEY for a signed token sent back as
//! an HttpOnly, SameSite=Strict cookie scoped to `/admin`.
//!
//! The token is `<expiry>.<nonce>.<HMAC-SHA256 of both>`, keyed by a hash of ADMIN_KEY. So any
//! replica with the same ADMIN_KEY accepts it (behind a load balancer the page does not bounce
//! between logged in and out), a restart does not log anybody out, and changing ADMIN_KEY logs
//! everybody out. Checks compare the MAC in constant time. Logging out revokes the token on the
//! replica that served the logout (a list of revoked digests kept until their expiry); other
//! replicas accept it until it expires, which the README states.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::conversation::fingerprint::hex;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "el2a_admin";
/// How long a session lives after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most revoked tokens remembered; beyond it the ones closest to expiry are forgotten first.
const MAX_REVOKED: usize = 1024;

/// Signs and checks the session tokens of one application (shared by the router through an
/// `Extension`).
pub struct Sessions {
    /// HMAC key derived from ADMIN_KEY; random without one (no token can be made then anyway).
    key: [u8; 32],
    /// Digests of logged-out tokens with their expiry (unix seconds).
    revoked: Mutex<Vec<([u8; 32], u64)>>,
}

impl Sessions {
    pub fn new(admin_key: Option<&str>) -> Sessions {
        let key = match admin_key {
            Some(k) => Sha256::digest(format!("el2a-admin-session:{k}").as_bytes()).into(),
            None => rand::random(),
        };
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

    /// The expiry of a well-signed, unexpired, unrevoked token.
    fn check(&self, token: &str) -> Option<u64> {
        let (payload, sig) = token.rsplit_once('.')?;
        let expiry: u64 = payload.split_once('.')?.0.parse().ok()?;
        let good = hex(&self.mac(payload));
        // Constant time over the whole signature; a length mismatch fails (no early exit).
        if !bool::from(good.as_bytes().ct_eq(sig.as_bytes())) || expiry <= unix_now() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn a_session_is_valid_until_closed() {
        let s = Sessions::new(Some("k"));
        let t = s.open();
        let h = with_cookie(&format!("other=1; {COOKIE_NAME}={t}"));
        assert!(s.valid(&h));
        assert!(!s.valid(&with_cookie(&format!("{COOKIE_NAME}={}", "0".repeat(64)))));
        assert!(!s.valid(&HeaderMap::new()));
        s.close(&h);
        assert!(!s.valid(&h));
    }

    #[test]
    fn another_replica_with_the_same_key_accepts_it_and_a_new_key_does_not() {
        let a = Sessions::new(Some("shared"));
        let t = a.open();
        let h = with_cookie(&format!("{COOKIE_NAME}={t}"));
        assert!(
            Sessions::new(Some("shared")).valid(&h),
            "restart or replica"
        );
        assert!(
            !Sessions::new(Some("changed")).valid(&h),
            "a new ADMIN_KEY logs out"
        );
        assert!(!Sessions::new(None).valid(&h));
    }

    #[test]
    fn forged_tampered_and_expired_tokens_fail() {
        let s = Sessions::new(Some("k"));
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
