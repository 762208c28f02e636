//! Client API keys.
//!
//! Keys are compared as SHA-256 digests with a constant-time equality over every configured
//! key (no early exit), so neither the position of a mismatch nor which key matched leaks
//! through timing. A request is identified downstream by a non-secret key id (a digest prefix),
//! which scopes conversation fingerprints so two clients never share an upstream history.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::conversation::fingerprint::hex;

/// The configured keys, kept only as digests.
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

/// Who is calling: a key id that is safe to log and to use as a fingerprint scope.
#[derive(Debug, Clone)]
pub struct ClientId(pub String);

impl ApiKeys {
    pub fn new(keys: &[String]) -> Self {
        ApiKeys {
            digests: keys.iter().map(|k| digest(k)).collect(),
        }
    }

    /// Whether the server is open (no key configured).
    pub fn is_open(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks `Authorization: Bearer <key>` (or `x-api-key: <key>`).
    pub fn check(&self, headers: &HeaderMap) -> Result<ClientId, ApiError> {
        if self.is_open() {
            return Ok(ClientId("open".to_string()));
        }
        let presented = presented_key(headers).ok_or(ApiError::Unauthorized)?;
        if self.matches(presented) {
            Ok(ClientId(hex(&digest(presented)[..8])))
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// Whether `key` is one of the configured keys (constant time, every key compared).
    pub fn matches(&self, key: &str) -> bool {
        let d = digest(key);
        let mut matched = subtle::Choice::from(0u8);
        for k in &self.digests {
            matched |= k.ct_eq(&d);
        }
        bool::from(matched)
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key a request presents: `Authorization: Bearer <key>` (or a bare value), else
/// `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let key = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !key.is_empty() {
            return Some(key);
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn accepts_any_configured_key_and_rejects_others() {
        let keys = ApiKeys::new(&["sk-a".into(), "sk-b".into()]);
        assert!(keys.check(&headers("authorization", "Bearer sk-b")).is_ok());
        assert!(keys.check(&headers("x-api-key", "sk-a")).is_ok());
        assert!(
            keys.check(&headers("authorization", "Bearer sk-c"))
                .is_err()
        );
        assert!(keys.check(&HeaderMap::new()).is_err());
        let a = keys
            .check(&headers("authorization", "Bearer sk-a"))
            .expect("a")
            .0;
        let b = keys
            .check(&headers("authorization", "Bearer sk-b"))
            .expect("b")
            .0;
        assert_ne!(a, b);
        assert!(!a.contains("sk-a"));
    }

    #[test]
    fn open_without_keys() {
        assert!(ApiKeys::new(&[]).check(&HeaderMap::new()).is_ok());
    }
}
