//! Admin page sessions: the login form trades the ADMIN_KEY for a random 32-byte token sent
//! back as an HttpOnly, SameSite=Strict cookie scoped to `/admin`.
//!
//! Only the SHA-256 digest of a token is kept (in memory, with an expiry): a memory dump does
//! not give working cookies, and lookups compare digests in constant time over every session
//! (no early exit), like the API keys. Sessions die with the process, which is the point of an
//! admin login: restart logs everybody out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "el2a_admin";
/// How long a session lives after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most live sessions; the oldest goes when a new login would exceed it.
const MAX_SESSIONS: usize = 64;

/// The live sessions of one application (shared by the router through an `Extension`).
#[derive(Default)]
pub struct Sessions {
    live: Mutex<Vec<([u8; 32], Instant)>>,
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// Opens a session; returns the token for the cookie (64 hex characters).
    pub fn open(&self) -> String {
        let raw: [u8; 32] = rand::random();
        let token = crate::conversation::fingerprint::hex(&raw);
        let now = Instant::now();
        if let Ok(mut live) = self.live.lock() {
            live.retain(|(_, exp)| *exp > now);
            if live.len() >= MAX_SESSIONS {
                live.remove(0);
            }
            live.push((digest(&token), now + SESSION_TTL));
        }
        token
    }

    /// Whether the request carries the cookie of a live session.
    pub fn valid(&self, headers: &HeaderMap) -> bool {
        let (Some(t), Ok(live)) = (token_of(headers), self.live.lock()) else {
            return false;
        };
        find(&live, &t).is_some()
    }

    /// Ends the session of the request's cookie, if any.
    pub fn close(&self, headers: &HeaderMap) {
        let (Some(t), Ok(mut live)) = (token_of(headers), self.live.lock()) else {
            return;
        };
        if let Some(i) = find(&live, &t) {
            live.remove(i);
        }
    }
}

/// Index of the live session with this token; compares every digest (constant time).
fn find(live: &[([u8; 32], Instant)], token: &str) -> Option<usize> {
    let d = digest(token);
    let now = Instant::now();
    let mut found = None;
    for (i, (k, exp)) in live.iter().enumerate() {
        let same = bool::from(k.ct_eq(&d));
        if same && *exp > now {
            found = Some(i);
        }
    }
    found
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
        let s = Sessions::new();
        let t = s.open();
        assert_eq!(t.len(), 64);
        let h = with_cookie(&format!("other=1; {COOKIE_NAME}={t}"));
        assert!(s.valid(&h));
        assert!(!s.valid(&with_cookie(&format!("{COOKIE_NAME}={}", "0".repeat(64)))));
        assert!(!s.valid(&HeaderMap::new()));
        s.close(&h);
        assert!(!s.valid(&h));
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
