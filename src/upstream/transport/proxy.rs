//! The outbound proxy for every call to cto.new (`UPSTREAM_PROXY`): an HTTP proxy that tunnels
//! with `CONNECT` (Clash, v2ray/xray HTTP inbounds, squid), optionally with basic credentials.
//!
//! It applies to Clerk, EngineLabs, image uploads and the WebSocket alike. Environment proxies
//! (`HTTPS_PROXY` ...) are ignored on purpose: reqwest would honour them for HTTP while the
//! WebSocket went direct, and a proxy that covers half a turn is worse than none.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A validated proxy URL. `Debug` and `Display` leave the credentials out.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamProxy {
    url: url::Url,
}

impl UpstreamProxy {
    /// Accepts `http://[user:password@]host:port` (port 80 when left out).
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = url::Url::parse(value.trim()).map_err(|e| {
            // The value may hold a password: name the problem, not the value.
            format!("is not a URL ({e}); expected http://[user:password@]host:port")
        })?;
        if url.scheme() != "http" {
            return Err(format!(
                "`{}://` proxies are not supported; use an HTTP proxy that tunnels with CONNECT (http://host:port)",
                url.scheme()
            ));
        }
        if url.host_str().is_none() {
            return Err("has no host; expected http://[user:password@]host:port".into());
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err("must not have a path or query; expected http://host:port".into());
        }
        Ok(UpstreamProxy { url })
    }

    /// The whole URL, credentials included, for the HTTP client.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// `host:port` of the proxy itself.
    pub fn address(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        format!("{host}:{}", self.url.port_or_known_default().unwrap_or(80))
    }

    /// The `Proxy-Authorization` value when the URL carries credentials.
    pub fn basic_auth(&self) -> Option<String> {
        if self.url.username().is_empty() && self.url.password().is_none() {
            return None;
        }
        let user = percent_decode(self.url.username());
        let pass = percent_decode(self.url.password().unwrap_or_default());
        Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{user}:{pass}"))
        ))
    }
}

/// `%XX` escapes of a URL's user info back to bytes (`+` stays `+`, unlike in forms).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl std::fmt::Display for UpstreamProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.address())?;
        if self.basic_auth().is_some() {
            write!(f, " (with credentials)")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for UpstreamProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Opens a `CONNECT` tunnel to `host:port` through the proxy (the WebSocket of the plain
/// transport; reqwest tunnels its own requests). Errors never include the credentials.
#[cfg(not(feature = "impersonate"))]
pub(super) async fn tunnel(
    proxy: &UpstreamProxy,
    host: &str,
    port: u16,
) -> Result<tokio::net::TcpStream, String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(proxy.address())
        .await
        .map_err(|e| format!("could not reach the proxy {proxy}: {e}"))?;
    let target = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = proxy.basic_auth() {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| format!("the proxy {proxy} closed the connection: {e}"))?;
    // Byte by byte: what follows the answer's head belongs to the tunnel (the TLS handshake).
    let mut answer = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() > 8 * 1024 {
            return Err(format!(
                "the proxy {proxy} sent an endless answer to CONNECT"
            ));
        }
        match tcp.read(&mut byte).await {
            Ok(1) => answer.push(byte[0]),
            Ok(_) => {
                return Err(format!(
                    "the proxy {proxy} closed the connection on CONNECT"
                ));
            }
            Err(e) => return Err(format!("reading the proxy's answer failed: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(tcp),
        _ => Err(format!(
            "the proxy {proxy} refused the tunnel to {target}: {}",
            status_line.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_proxies_with_or_without_credentials() {
        let p = UpstreamProxy::parse("http://127.0.0.1:7890").expect("plain");
        assert_eq!(p.address(), "127.0.0.1:7890");
        assert_eq!(p.basic_auth(), None);
        assert_eq!(p.to_string(), "http://127.0.0.1:7890");
        let p = UpstreamProxy::parse(" http://us%40er:p%3As+s@proxy.lan ").expect("creds");
        assert_eq!(p.address(), "proxy.lan:80");
        let expected = format!("Basic {}", STANDARD.encode("us@er:p:s+s"));
        assert_eq!(p.basic_auth(), Some(expected));
        let shown = format!("{p} {p:?}");
        assert!(
            !shown.contains("p%3As") && !shown.contains("s+s"),
            "{shown}"
        );
        assert!(shown.contains("(with credentials)"), "{shown}");
    }

    #[test]
    fn refuses_what_it_cannot_tunnel_through_without_echoing_secrets() {
        for (value, says) in [
            ("socks5://u:secret@h:1080", "not supported"),
            ("https://u:secret@h:443", "not supported"),
            ("not a url secret", "not a URL"),
            ("http://u:secret@h:1/path", "path"),
        ] {
            let err = UpstreamProxy::parse(value).expect_err(value);
            assert!(err.contains(says), "{value}: {err}");
            assert!(!err.contains("secret"), "{value}: {err}");
        }
    }
}
