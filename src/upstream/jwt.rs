//! Reading a Clerk session token's claims (`exp`, `iat`, `sub`, `sid`, org) without verifying
//! its signature: we only need to know when to refresh it and whose it is; EngineLabs does the
//! verifying.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::UpstreamError;

/// The claims the client cares about. Times are unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub exp: Option<u64>,
    pub iat: Option<u64>,
    /// Clerk user id (`user_...`).
    pub sub: Option<String>,
    /// Clerk session id (`sess_...`).
    pub sid: Option<String>,
    /// Org id from the v2 `o.id` claim or the v1 `org_id` claim.
    pub org_id: Option<String>,
}

impl Claims {
    /// Whether a token with these claims is still worth reusing at `now`: it must have more than
    /// min(20 s, a third of its lifetime) left, so short test tokens are still cached a little.
    pub fn reusable_at(&self, now: u64) -> bool {
        let Some(exp) = self.exp else {
            return false;
        };
        let lifetime = self.iat.map_or(60, |iat| exp.saturating_sub(iat));
        let margin = 20.min(lifetime / 3);
        exp > now && exp - now > margin
    }
}

/// Decodes the payload of a JWT (base64url, padding tolerated).
pub fn decode_claims(jwt: &str) -> Result<Claims, UpstreamError> {
    let payload = jwt
        .split('.')
        .nth(1)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| protocol("the token is not a JWT"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| protocol("the token payload is not base64url"))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| protocol("the token payload is not JSON"))?;
    let str_claim = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let num_claim =
        |v: Option<&Value>| v.and_then(|n| n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)));
    Ok(Claims {
        exp: num_claim(value.get("exp")),
        iat: num_claim(value.get("iat")),
        sub: str_claim(value.get("sub")),
        sid: str_claim(value.get("sid")),
        org_id: str_claim(value.get("o").and_then(|o| o.get("id")))
            .or_else(|| str_claim(value.get("org_id"))),
    })
}

fn protocol(detail: &str) -> UpstreamError {
    UpstreamError::Protocol {
        call: "session token",
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn v2_claims() {
        let c = decode_claims(&token(
            r#"{"exp":1000,"iat":940,"sub":"user_1","sid":"sess_1","o":{"id":"org_1","rol":"admin"},"v":2}"#,
        ))
        .expect("decodes");
        assert_eq!(c.exp, Some(1000));
        assert_eq!(c.iat, Some(940));
        assert_eq!(c.sub.as_deref(), Some("user_1"));
        assert_eq!(c.sid.as_deref(), Some("sess_1"));
        assert_eq!(c.org_id.as_deref(), Some("org_1"));
    }

    #[test]
    fn v1_org_claim_and_missing_fields() {
        let c = decode_claims(&token(r#"{"org_id":"org_9","sub":"u"}"#)).expect("decodes");
        assert_eq!(c.org_id.as_deref(), Some("org_9"));
        assert_eq!(c.exp, None);
        let c = decode_claims(&token(r#"{}"#)).expect("decodes");
        assert_eq!(c, Claims::default());
    }

    #[test]
    fn padded_payload_is_tolerated() {
        let padded = format!(
            "h.{}.s",
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"sub":"ab"}"#)
        );
        assert_eq!(
            decode_claims(&padded).expect("decodes").sub.as_deref(),
            Some("ab")
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "a..b", "a.!!!.b", &token("not json")] {
            assert!(
                matches!(decode_claims(bad), Err(UpstreamError::Protocol { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn reuse_rule() {
        let c = Claims {
            exp: Some(1060),
            iat: Some(1000),
            ..Claims::default()
        };
        assert!(c.reusable_at(1000));
        assert!(c.reusable_at(1039));
        assert!(!c.reusable_at(1040));
        assert!(!c.reusable_at(2000));
        // A 6-second test token keeps a 2-second margin.
        let short = Claims {
            exp: Some(106),
            iat: Some(100),
            ..Claims::default()
        };
        assert!(short.reusable_at(103));
        assert!(!short.reusable_at(104));
        assert!(!Claims::default().reusable_at(0));
    }
}
