//! Session JWTs of the simulated Clerk: HS256 with a per-simulator random secret.
//!
//! Real Clerk signs RS256; the proxy never verifies signatures (it only reads `exp` and `sub`),
//! so HS256 keeps this self-contained while the EngineLabs side can still reject forged or aged
//! tokens, which is how the tests prove the proxy never sends a stale one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;

use super::util::random_alnum;

type HmacSha256 = Hmac<Sha256>;

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum JwtError {
    #[error("not a three-part JWT")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
}

/// What a token is minted for.
pub(crate) struct MintRequest<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub org_id: &'a str,
    /// The `Origin` header of the mint request, copied into `azp`.
    pub origin: Option<&'a str>,
    pub iat: u64,
    pub ttl_secs: u64,
}

/// The claims the EngineLabs side needs from a verified token.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub sub: String,
}

pub(crate) struct JwtKey {
    /// 64 bytes: HMAC-SHA256's block size, so the key is used as is.
    secret: [u8; 64],
    kid: String,
}

impl JwtKey {
    pub fn random() -> JwtKey {
        let mut secret = [0u8; 64];
        rand::rng().fill(&mut secret[..]);
        JwtKey {
            secret,
            kid: format!("ins_sim{}", random_alnum(20)),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new(hmac::digest::generic_array::GenericArray::from_slice(
            &self.secret,
        ))
    }

    pub fn mint(&self, req: &MintRequest<'_>) -> String {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": self.kid});
        let mut claims = json!({
            "sub": req.user_id,
            "sid": req.session_id,
            "iat": req.iat,
            "nbf": req.iat.saturating_sub(10),
            "exp": req.iat + req.ttl_secs,
            "iss": "https://clerk.sim.invalid",
            "fva": [0, -1],
            "sts": "active",
            "jti": random_alnum(20),
            "v": 2,
            "o": {"id": req.org_id, "rol": "admin", "slg": "sim"},
        });
        if let (Some(origin), Some(map)) = (req.origin, claims.as_object_mut()) {
            map.insert("azp".into(), Value::String(origin.to_owned()));
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Checks the signature and `exp` (a token is dead from its `exp` second on).
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Verified, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| JwtError::BadSignature)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&sig).map_err(|_| JwtError::BadSignature)?;
        let claims: Value = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Malformed)?;
        let exp = claims["exp"].as_u64().ok_or(JwtError::Malformed)?;
        if now_secs >= exp {
            return Err(JwtError::Expired);
        }
        let sub = claims["sub"]
            .as_str()
            .ok_or(JwtError::Malformed)?
            .to_owned();
        Ok(Verified { sub })
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn req(iat: u64) -> MintRequest<'static> {
        MintRequest {
            user_id: "user_a",
            session_id: "sess_a",
            org_id: "org_a",
            origin: Some("https://cto.new"),
            iat,
            ttl_secs: 60,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let key = JwtKey::random();
        let jwt = key.mint(&req(1000));
        assert_eq!(key.verify(&jwt, 1059).unwrap().sub, "user_a");
        assert_eq!(key.verify(&jwt, 1060).unwrap_err(), JwtError::Expired);
    }

    #[test]
    fn other_key_or_tampering_is_rejected() {
        let key = JwtKey::random();
        let jwt = key.mint(&req(1000));
        assert_eq!(
            JwtKey::random().verify(&jwt, 1001).unwrap_err(),
            JwtError::BadSignature
        );
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sub":"user_b","exp":99999999999}"#);
        parts[1] = &forged;
        assert_eq!(
            key.verify(&parts.join("."), 1001).unwrap_err(),
            JwtError::BadSignature
        );
        assert_eq!(key.verify("abc", 1).unwrap_err(), JwtError::Malformed);
    }
}
