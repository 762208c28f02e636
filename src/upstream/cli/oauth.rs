//! `POST /oauth/token` (protocol notes §10): one refresh, `{"grant_type": "refresh_token",
//! "refresh_token": …}` → `{"access_token", "refresh_token"?, "expires_in"}`, and what a refusal
//! means.
//!
//! A refusal of the grant itself (`invalid_grant` and its kin, or a 401/403 that is not
//! Cloudflare's) means the refresh token is dead: [`UpstreamError::CliLoginRejected`]. Anything
//! else (a malformed request, 429, 5xx) says nothing about the token. Both bodies hold tokens:
//! a success is never quoted, a refusal only with the spent token scrubbed out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::http::Method;
use ::http::header::{ACCEPT, USER_AGENT};
use serde_json::{Value, json};

use super::CliConfig;
use super::credentials::Secret;
use super::refusal::{error_code, shown};
use crate::upstream::answer::retry_after;
use crate::upstream::transport::{Reply, Request, Transport};
use crate::upstream::{UpstreamError, jwt};

pub const CALL_TOKEN: &str = "POST /oauth/token";

/// A lifetime to assume when the answer gives none and the token is no JWT: the CLI's own
/// (900 s per the notes). A wrong guess costs one 401 and a forced refresh.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(900);

/// OAuth error codes (RFC 6749 §5.2 and common extensions) that condemn the refresh token.
const DEAD_CODES: &[&str] = &[
    "invalid_grant",
    "invalid_token",
    "expired_token",
    "invalid_client",
    "unauthorized_client",
    "access_denied",
    "token_revoked",
];

/// What one refresh granted.
#[derive(Debug)]
pub struct Grant {
    pub access_token: Secret,
    /// The rotated refresh token; `None` when the answer had none (keep the old one).
    pub refresh_token: Option<Secret>,
    /// How long the access token lives from now.
    pub lifetime: Duration,
}

/// Spends `refresh_token` once.
pub async fn refresh(
    http: &Transport,
    cfg: &CliConfig,
    refresh_token: &Secret,
) -> Result<Grant, UpstreamError> {
    let body = json!({"grant_type": "refresh_token", "refresh_token": refresh_token.expose()});
    let req = Request::new(Method::POST, format!("{}/oauth/token", cfg.base_url))
        .as_program()
        .header(USER_AGENT, &cfg.user_agent)
        .header(ACCEPT, "application/json")
        .json(&body)
        .timeout(cfg.request_timeout);
    let reply = http.send(CALL_TOKEN, req).await?;
    if reply.is_success() {
        grant(&reply.body)
    } else {
        Err(refused(&reply, refresh_token))
    }
}

/// Reads a successful answer, liberally (camelCase too; the lifetime from `expires_in`,
/// `expires_at`, or the token's own `exp`).
pub fn grant(body: &str) -> Result<Grant, UpstreamError> {
    // Never quote this body: it is made of tokens.
    let protocol = |detail: &str| UpstreamError::Protocol {
        call: CALL_TOKEN,
        detail: detail.to_string(),
    };
    let v: Value = serde_json::from_str(body).map_err(|_| protocol("the answer is not JSON"))?;
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k)?.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
    };
    let access = text(&["access_token", "accessToken"])
        .ok_or_else(|| protocol("the answer has no access_token"))?;
    let lifetime = number(&v, &["expires_in", "expiresIn"])
        .map(Duration::from_secs)
        .or_else(|| until(number(&v, &["expires_at", "expiresAt"])?))
        .or_else(|| until(jwt::decode_claims(access.expose()).ok()?.exp?))
        .unwrap_or(ASSUMED_LIFETIME);
    Ok(Grant {
        access_token: access,
        refresh_token: text(&["refresh_token", "refreshToken"]),
        lifetime,
    })
}

/// A number or numeric string under the first of `keys` present.
fn number(v: &Value, keys: &[&str]) -> Option<u64> {
    let n = keys.iter().find_map(|k| v.get(*k))?;
    n.as_u64()
        .or_else(|| n.as_f64().map(|f| f.max(0.0) as u64))
        .or_else(|| n.as_str()?.trim().parse().ok())
}

/// Time left until an epoch instant given in seconds or milliseconds.
fn until(epoch: u64) -> Option<Duration> {
    let ms = if epoch < 100_000_000_000 {
        epoch.saturating_mul(1000)
    } else {
        epoch
    };
    (UNIX_EPOCH + Duration::from_millis(ms))
        .duration_since(SystemTime::now())
        .ok()
}

/// Maps a refused refresh.
pub fn refused(reply: &Reply, spent: &Secret) -> UpstreamError {
    let body = shown(&reply.body, &[spent.expose()]);
    let code = error_code(&reply.body).unwrap_or_default();
    let dead = DEAD_CODES.contains(&code.as_str());
    match reply.status {
        401 | 403 => UpstreamError::CliLoginRejected {
            detail: format!("{CALL_TOKEN} answered {}: {body}", reply.status),
        },
        400..=499 if dead => UpstreamError::CliLoginRejected {
            detail: format!("{CALL_TOKEN} answered {}: {body}", reply.status),
        },
        429 => UpstreamError::RateLimited {
            what: format!("{CALL_TOKEN}: {body}"),
            retry_after: retry_after(&reply.headers),
        },
        status => UpstreamError::Status {
            call: CALL_TOKEN,
            status,
            body,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply::of(status, body)
    }

    #[test]
    fn a_grant_is_read_liberally() {
        let g = grant(
            r#"{"access_token":"at","refresh_token":"rt2","expires_in":900,"token_type":"Bearer"}"#,
        )
        .expect("grant");
        assert_eq!(g.access_token.expose(), "at");
        assert_eq!(g.refresh_token.as_ref().map(Secret::expose), Some("rt2"));
        assert_eq!(g.lifetime, Duration::from_secs(900));

        let g = grant(r#"{"accessToken":"at","expiresIn":"60","refreshToken":""}"#).expect("camel");
        assert!(g.refresh_token.is_none(), "an empty token is no rotation");
        assert_eq!(g.lifetime, Duration::from_secs(60));

        let g = grant(r#"{"access_token":"at"}"#).expect("bare");
        assert_eq!(g.lifetime, ASSUMED_LIFETIME);
    }

    #[test]
    fn a_grant_without_expiry_reads_the_jwt() {
        use base64::Engine as _;
        let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            + 300;
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"none"}"#.into()),
            b64(format!(r#"{{"exp":{exp}}}"#))
        );
        let g = grant(&json!({"access_token": jwt}).to_string()).expect("grant");
        assert!(g.lifetime > Duration::from_secs(290) && g.lifetime <= Duration::from_secs(300));
    }

    #[test]
    fn broken_grants_are_protocol_errors_that_quote_nothing() {
        for body in ["not json rt_secret", r#"{"refresh_token":"rt_secret"}"#] {
            let e = grant(body).expect_err(body);
            assert_eq!(e.kind(), "protocol");
            assert!(!e.to_string().contains("rt_secret"), "{e}");
        }
    }

    #[test]
    fn refusals_of_the_grant_condemn_the_token_others_do_not() {
        let spent = Secret::new("rt_spent");
        let e = refused(
            &reply(
                400,
                r#"{"error":"invalid_grant","error_description":"rt_spent is used"}"#,
            ),
            &spent,
        );
        assert_eq!(e.kind(), "cli_login_rejected");
        let text = e.to_string();
        assert!(
            text.contains("invalid_grant") && text.contains("cto login"),
            "{text}"
        );
        assert!(!text.contains("rt_spent"), "{text}");

        assert_eq!(
            refused(&reply(401, ""), &spent).kind(),
            "cli_login_rejected"
        );
        assert_eq!(
            refused(&reply(400, r#"{"error":"unsupported_grant_type"}"#), &spent).kind(),
            "status"
        );
        assert_eq!(refused(&reply(429, ""), &spent).kind(), "rate_limited");
        let e = refused(&reply(503, "down"), &spent);
        assert!(e.is_retryable(), "{e}");
    }
}
