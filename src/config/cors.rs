//! [`CorsOrigins`]: which browser origins may call the client API (`CORS_ORIGINS`), as
//! validated at start; `server/cors.rs` turns it into the CORS layer.

use axum::http::HeaderValue;

use super::{ConfigError, bad};

/// Which origins may call the client API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all (browsers refuse cross-origin calls).
    Off,
    /// `*`: any origin.
    Any,
    /// Exactly these (`scheme://host[:port]`, as browsers send them).
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// `CORS_ORIGINS`: empty (off), `*`, or comma-separated origins.
    pub fn parse(value: &str) -> Result<CorsOrigins, ConfigError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(CorsOrigins::Off);
        }
        if value == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut list = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            list.push(origin(entry)?);
        }
        Ok(CorsOrigins::List(list))
    }
}

/// One origin of the list, as a browser would send it (lower-case, default port left out).
fn origin(entry: &str) -> Result<HeaderValue, ConfigError> {
    let refuse = || {
        bad(
            "CORS_ORIGINS",
            format!(
                "`{entry}` is not an origin: write scheme://host[:port] without a path, e.g. https://chat.example.com (or `*` alone for any origin)"
            ),
        )
    };
    let url = url::Url::parse(entry).map_err(|_| refuse())?;
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
        return Err(refuse());
    }
    HeaderValue::from_str(&url.origin().ascii_serialization()).map_err(|_| refuse())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting() {
        assert_eq!(CorsOrigins::parse("").ok(), Some(CorsOrigins::Off));
        assert_eq!(CorsOrigins::parse(" * ").ok(), Some(CorsOrigins::Any));
        let list = CorsOrigins::parse(
            "https://Chat.Example.com, http://localhost:3000/ ,https://a.example:443",
        )
        .expect("valid");
        assert_eq!(
            list,
            CorsOrigins::List(vec![
                HeaderValue::from_static("https://chat.example.com"),
                HeaderValue::from_static("http://localhost:3000"),
                HeaderValue::from_static("https://a.example"),
            ])
        );
        for bad in [
            "chat.example.com",
            "https://chat.example.com/app",
            "ftp://x.example",
            "https://x.example?q=1",
            "*, https://a.example",
            "https://user@x.example",
        ] {
            let e = CorsOrigins::parse(bad).expect_err(bad);
            assert_eq!(e.setting, "CORS_ORIGINS", "{bad}");
        }
    }
}
