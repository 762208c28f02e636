//! What `cto login` leaves behind, read liberally: the JSON of `~/.cto/credentials`
//! (`accessToken`, `refreshToken`, `expiresAt` in ms; protocol notes §10 \[O\]), the same with
//! snake_case keys, or a bare refresh token pasted on its own.
//!
//! Only the refresh token is required: the access token lives minutes and is refreshed anyway.
//! Tokens live in [`Secret`], which cannot be printed, and no error quotes the input.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::upstream::UpstreamError;

/// A token that must never reach a log or an error message: no `Display`, a redacting `Debug`;
/// [`Secret::expose`] is the one way to the text, at the place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A CLI login as pasted by the operator.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub refresh_token: Secret,
    /// The access token `cto login` saved, if any: spares one refresh at start while it lasts.
    pub access_token: Option<Secret>,
    /// When `access_token` expires (`expiresAt`); without it the saved token is not trusted.
    pub expires_at: Option<SystemTime>,
}

/// `expiresAt` values below this are taken as seconds, not milliseconds (year 5138 in s, 1973
/// in ms): a file written by hand or by another tool may use either.
const SECONDS_BELOW: u64 = 100_000_000_000;

impl Credentials {
    /// Reads `~/.cto/credentials` JSON or a bare refresh token.
    pub fn parse(text: &str) -> Result<Self, UpstreamError> {
        let text = text.trim().trim_start_matches('\u{feff}');
        if text.is_empty() {
            return Err(bad("the value is empty"));
        }
        if !text.starts_with('{') {
            return Self::bare(text);
        }
        let json: Value =
            serde_json::from_str(text).map_err(|_| bad("it starts with `{` but is not JSON"))?;
        // One level of nesting is accepted too (`{"credentials": {...}}`, a profile name).
        let object = std::iter::once(&json)
            .chain(json.as_object().into_iter().flat_map(|o| o.values()))
            .find(|v| string(v, &["refreshToken", "refresh_token"]).is_some())
            .ok_or_else(|| bad("the JSON has no refreshToken"))?;
        let refresh = string(object, &["refreshToken", "refresh_token"]).unwrap_or_default();
        check_token(refresh)?;
        let access = string(object, &["accessToken", "access_token"])
            .filter(|t| check_token(t).is_ok())
            .map(Secret::new);
        let expires_at = ["expiresAt", "expires_at"]
            .iter()
            .find_map(|k| object.get(*k))
            .and_then(epoch_time);
        Ok(Credentials {
            refresh_token: Secret::new(refresh),
            access_token: access,
            expires_at,
        })
    }

    /// Just a refresh token (optionally in JSON string quotes).
    fn bare(text: &str) -> Result<Self, UpstreamError> {
        let token = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        check_token(token)?;
        Ok(Credentials {
            refresh_token: Secret::new(token),
            access_token: None,
            expires_at: None,
        })
    }

    /// The saved access token with the time it has left, if it is usable at all.
    pub fn saved_access(&self) -> Option<(Secret, Duration)> {
        let left = self
            .expires_at?
            .duration_since(SystemTime::now())
            .ok()
            .filter(|d| !d.is_zero())?;
        Some((self.access_token.clone()?, left))
    }
}

fn bad(why: &str) -> UpstreamError {
    UpstreamError::BadCliCredentials(why.to_string())
}

/// The first non-empty string among `keys`.
fn string<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| v.get(*k)?.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A token is one printable ASCII word: anything else would not survive an HTTP header or JSON
/// body unchanged, and is more likely a paste gone wrong.
fn check_token(token: &str) -> Result<(), UpstreamError> {
    if token.is_empty() {
        return Err(bad("the refresh token is empty"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) || token.contains(['"', '\\']) {
        return Err(bad(
            "the token holds spaces, quotes or other characters a token never has",
        ));
    }
    Ok(())
}

/// `expiresAt` as a time: a number (or numeric string) of ms, or of seconds if small.
fn epoch_time(v: &Value) -> Option<SystemTime> {
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64))?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    let ms = if n < SECONDS_BELOW {
        n.saturating_mul(1000)
    } else {
        n
    };
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    }

    #[test]
    fn reads_the_file_cto_login_writes() {
        let text = format!(
            r#"{{"accessToken":"at_1","refreshToken":"rt_1","expiresAt":{}}}"#,
            now_ms() + 600_000
        );
        let c = Credentials::parse(&text).expect("credentials");
        assert_eq!(c.refresh_token.expose(), "rt_1");
        let (access, left) = c.saved_access().expect("saved access token");
        assert_eq!(access.expose(), "at_1");
        assert!(left > Duration::from_secs(590) && left <= Duration::from_secs(600));
    }

    #[test]
    fn snake_case_seconds_nesting_and_missing_fields_are_accepted() {
        let secs = now_ms() / 1000 + 60;
        let c = Credentials::parse(&format!(
            r#"{{"access_token":"at","refresh_token":"rt","expires_at":"{secs}"}}"#
        ))
        .expect("snake case");
        assert_eq!(c.refresh_token.expose(), "rt");
        assert!(c.saved_access().is_some(), "seconds are read as seconds");

        let c = Credentials::parse(r#"{"default": {"refreshToken": "rt_n"}}"#).expect("nested");
        assert_eq!(c.refresh_token.expose(), "rt_n");
        assert!(c.saved_access().is_none());

        // An expired or undated access token is not used.
        let c = Credentials::parse(r#"{"refreshToken":"rt","accessToken":"at","expiresAt":5}"#)
            .expect("expired");
        assert!(c.saved_access().is_none());
        let c = Credentials::parse(r#"{"refreshToken":"rt","accessToken":"at"}"#).expect("undated");
        assert!(c.saved_access().is_none());
    }

    #[test]
    fn a_bare_token_is_a_refresh_token() {
        for text in ["cto_rt_abc\n", "\"cto_rt_abc\"", "\u{feff}cto_rt_abc"] {
            let c = Credentials::parse(text).expect("bare");
            assert_eq!(c.refresh_token.expose(), "cto_rt_abc", "{text:?}");
            assert!(c.access_token.is_none());
        }
    }

    #[test]
    fn bad_input_is_refused_without_quoting_it() {
        for text in [
            "",
            "  ",
            "{not json secret_value}",
            r#"{"accessToken":"secret_value"}"#,
            r#"{"refreshToken":""}"#,
            "two words_secret_value",
        ] {
            let e = Credentials::parse(text).expect_err(text);
            assert_eq!(e.kind(), "bad_cli_credentials");
            assert!(!e.to_string().contains("secret_value"), "{e}");
        }
    }

    #[test]
    fn debug_never_prints_a_token() {
        let c = Credentials::parse(
            r#"{"accessToken":"at_secret","refreshToken":"rt_secret","expiresAt":1}"#,
        )
        .expect("credentials");
        let text = format!("{c:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("redacted"));
    }
}
