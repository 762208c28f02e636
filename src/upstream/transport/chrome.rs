//! The `impersonate` stack: wreq over BoringSSL, presenting as Chrome 149 on Windows in its TLS
//! ClientHello, HTTP/2 settings and default headers (`user-agent`, `sec-ch-ua*`,
//! `accept-language`), with the `sec-fetch-*` headers of a `fetch()` or WebSocket made by the
//! cto.new page rather than of a page navigation.
//!
//! The configured user agent is dropped from every request: a Chrome 147 user agent on a Chrome
//! 149 handshake is exactly the kind of mismatch a bot check looks for.

use futures_util::{SinkExt, StreamExt as _};
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, StatusCode};
use wreq::ws::message::Message;
use wreq_util::{Emulation, Platform, Profile};

use super::proxy::UpstreamProxy;
use super::{
    Download, Opened, Reply, Request, WS_CALL, WS_MAX_MESSAGE, WS_READ_BUFFER, WsEvent,
    closed_by_server, refused,
};
use crate::capture::Recorder;
use crate::upstream::{UpstreamConfig, UpstreamError};

/// The HTTP client (one connection pool, one emulation) and the WebSocket connector. Cheap to
/// clone.
#[derive(Clone)]
pub struct Transport {
    http: wreq::Client,
    /// Downloads clients' image URLs: public addresses only unless allowed (see `is_public`).
    images: wreq::Client,
    origin: String,
    proxy: Option<UpstreamProxy>,
    allow_private_images: bool,
    /// Set by `doctor --capture`: every call is recorded.
    recorder: Option<Recorder>,
}

impl Transport {
    /// Named in the start-up log and `/healthz`.
    pub const NAME: &'static str = "impersonate (wreq, Chrome 149 on Windows)";

    /// Records every call from now on (see [`crate::capture`]).
    pub fn set_recorder(&mut self, recorder: Recorder) {
        self.recorder = Some(recorder);
    }

    pub fn new(cfg: &UpstreamConfig) -> Result<Self, UpstreamError> {
        let emulation = Emulation::builder()
            .profile(Profile::Chrome149)
            .platform(Platform::Windows)
            .build();
        let failed = |e: wreq::Error| UpstreamError::Network {
            call: "http client",
            detail: e.to_string(),
        };
        let builder = || -> Result<wreq::ClientBuilder, UpstreamError> {
            let b = wreq::Client::builder()
                .emulation(emulation.clone())
                .connect_timeout(cfg.request_timeout)
                .timeout(cfg.request_timeout)
                .pool_idle_timeout(std::time::Duration::from_secs(90))
                .pool_max_idle_per_host(64)
                .redirect(wreq::redirect::Policy::limited(10));
            // One proxy for HTTP and the WebSocket alike; environment proxies are ignored (see
            // `proxy`), as in the plain transport.
            Ok(match &cfg.proxy {
                Some(p) => b.proxy(wreq::Proxy::all(p.url().as_str()).map_err(failed)?),
                None => b.no_proxy(),
            })
        };
        let mut images = builder()?;
        if !cfg.allow_private_image_urls {
            // Behind UPSTREAM_PROXY the proxy resolves the names; ours would only resolve the
            // proxy itself (often a private address), so only IP literals are checked then.
            if cfg.proxy.is_none() {
                images = images.dns_resolver(PublicDns);
            }
            images = images.redirect(wreq::redirect::Policy::custom(|attempt| {
                let target = attempt.uri.to_string();
                match super::image_redirect(&target, attempt.previous.len()) {
                    super::ImageRedirect::Follow => attempt.follow(),
                    super::ImageRedirect::Stop => attempt.stop(),
                    super::ImageRedirect::Refuse(why) => attempt.error(why),
                }
            }));
        }
        Ok(Transport {
            http: builder()?.build().map_err(failed)?,
            images: images.build().map_err(failed)?,
            origin: cfg.origin.clone(),
            proxy: cfg.proxy.clone(),
            allow_private_images: cfg.allow_private_image_urls,
            recorder: None,
        })
    }

    fn build(&self, req: Request, dest: FetchDest) -> wreq::RequestBuilder {
        self.build_on(&self.http, req, dest)
    }

    fn build_on(
        &self,
        client: &wreq::Client,
        req: Request,
        dest: FetchDest,
    ) -> wreq::RequestBuilder {
        let dest = if req.program {
            FetchDest::Program
        } else {
            dest
        };
        let headers = browser_headers(req.headers, &self.origin, &req.url, dest);
        let mut b = client.request(req.method, &req.url).headers(headers);
        if let Some(t) = req.timeout {
            b = b.timeout(t);
        }
        if let Some(body) = req.body {
            b = b.body(body);
        }
        b
    }

    /// Sends the request and reads the whole answer; a Cloudflare challenge is an error.
    pub async fn send(&self, call: &'static str, req: Request) -> Result<Reply, UpstreamError> {
        req.check(call)?;
        let seq = super::record_sent(self.recorder.as_ref(), &req);
        let resp = self
            .build(req, FetchDest::Empty)
            .send()
            .await
            .map_err(|e| network(call, &e, self.proxy.as_ref()))?;
        let host = resp.uri().host().unwrap_or_default().to_string();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .text()
            .await
            .map_err(|e| network(call, &e, self.proxy.as_ref()))?;
        super::record_answered(
            self.recorder.as_ref(),
            seq,
            status,
            &headers,
            body.as_bytes(),
        );
        Reply::checked(call, &host, status, headers, body)
    }

    /// Sends the request and hands back the answer as soon as its head arrived: a success with
    /// its body still to be read, or a refusal read whole (see the plain transport's `open`).
    pub async fn open(&self, call: &'static str, req: Request) -> Result<Opened, UpstreamError> {
        req.check(call)?;
        let seq = super::record_sent(self.recorder.as_ref(), &req);
        let resp = self
            .build(req, FetchDest::Empty)
            .send()
            .await
            .map_err(|e| network(call, &e, self.proxy.as_ref()))?;
        let host = resp.uri().host().unwrap_or_default().to_string();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let proxy = self.proxy.clone();
        let chunks = resp.bytes_stream().map(move |c| {
            c.map_err(|e| {
                let why = super::with_sources("reading the answer failed", &e);
                super::through(proxy.as_ref(), why)
            })
        });
        let body = Download {
            status,
            headers,
            chunks: Box::pin(chunks),
        };
        let body = super::record_stream(self.recorder.as_ref(), seq, body);
        super::opened(call, &host, body).await
    }

    /// Downloads an image URL a client sent (through the image client: public addresses only
    /// unless allowed) and hands back the body as it arrives, so a size limit can stop it.
    pub async fn download(&self, req: Request) -> Result<Download, String> {
        req.check_download(self.allow_private_images)?;
        let resp = self
            .build_on(&self.images, req, FetchDest::Image)
            .send()
            .await
            .map_err(|e| super::full_chain(&e))?;
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let chunks = resp.bytes_stream().map(|c| c.map_err(|e| e.to_string()));
        Ok(Download {
            status,
            headers,
            chunks: Box::pin(chunks),
        })
    }

    /// Opens the stream with `headers` on the handshake. Not bounded in time: the caller is.
    pub async fn websocket(&self, url: &str, headers: HeaderMap) -> Result<Socket, UpstreamError> {
        if let Some(r) = &self.recorder {
            r.socket(url);
        }
        let headers = browser_headers(headers, &self.origin, url, FetchDest::WebSocket);
        let resp = self
            .http
            .websocket(url)
            .headers(headers)
            .read_buffer_size(WS_READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(WS_MAX_MESSAGE)
            .send()
            .await
            .map_err(|e| network(WS_CALL, &e, self.proxy.as_ref()))?;
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS && status != StatusCode::OK {
            // The body of a refused upgrade is not reachable here; the status and headers are
            // what challenge detection needs (`cf-mitigated`, an HTML content type).
            return Err(refused(url, status.as_u16(), resp.headers(), ""));
        }
        let ws = resp
            .into_websocket()
            .await
            .map_err(|e| UpstreamError::Network {
                call: WS_CALL,
                detail: e.to_string(),
            })?;
        Ok(Socket(ws))
    }
}

/// DNS of the image downloader: public addresses only.
struct PublicDns;

impl wreq::dns::Resolve for PublicDns {
    fn resolve(&self, name: wreq::dns::Name) -> wreq::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = super::public_addrs(host).await?;
            Ok(Box::new(addrs.into_iter()) as wreq::dns::Addrs)
        })
    }
}

/// An open stream. Dropping it drops the connection.
pub struct Socket(wreq::ws::WebSocket);

impl Socket {
    /// The next frame; `None` once the socket has ended.
    pub async fn recv(&mut self) -> Option<Result<WsEvent, String>> {
        Some(match self.0.next().await? {
            Err(e) => Err(e.to_string()),
            Ok(Message::Text(t)) => Ok(WsEvent::Text(t.as_str().to_owned())),
            Ok(Message::Binary(b)) => Ok(WsEvent::Text(String::from_utf8_lossy(&b).into_owned())),
            Ok(Message::Close(frame)) => Ok(closed_by_server(
                frame
                    .as_ref()
                    .map(|f| (u16::from(f.code.clone()), f.reason.as_str())),
            )),
            Ok(_) => Ok(WsEvent::Other),
        })
    }

    pub async fn send_text(&mut self, text: &str) -> Result<(), String> {
        self.0
            .send(Message::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends a close frame and flushes it; errors mean the socket is gone anyway.
    pub async fn close(&mut self) {
        let _ = SinkExt::close(&mut self.0).await;
    }
}

/// What the page's request is for, as Chrome says in `sec-fetch-dest`/`sec-fetch-mode`.
#[derive(Clone, Copy)]
enum FetchDest {
    /// `fetch()` from the page: Clerk, EngineLabs, the upload PUT.
    Empty,
    /// An image the client pointed us at.
    Image,
    WebSocket,
    /// A program's own request (the `cto` CLI): its headers are sent as they are.
    Program,
}

/// Our headers, minus the user agent (the emulation's matches its handshake), plus the
/// `sec-fetch-*` of a request made by the page at `origin`. The emulation's own defaults are
/// those of a navigation (`navigate`, `document`, `none`), which no page script ever sends.
/// A program's request keeps its own headers: the CLI door expects opencode's user agent, and
/// no `fetch()` outside a browser sends `sec-fetch-*`.
fn browser_headers(mut headers: HeaderMap, origin: &str, url: &str, dest: FetchDest) -> HeaderMap {
    let (dest, mode) = match dest {
        FetchDest::Empty => ("empty", "cors"),
        FetchDest::Image => ("image", "no-cors"),
        FetchDest::WebSocket => ("websocket", "websocket"),
        FetchDest::Program => return headers,
    };
    headers.remove(USER_AGENT);
    let site = fetch_site(origin, url);
    for (name, value) in [
        ("sec-fetch-dest", dest),
        ("sec-fetch-mode", mode),
        ("sec-fetch-site", site),
        ("priority", "u=1, i"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

/// `sec-fetch-site` of a request from a page at `origin` to `url`. "Site" is approximated by the
/// last two labels of the host, which holds for the hosts involved (`cto.new`,
/// `clerk.cto.new`, `enginelabs.ai`); a public-suffix list would be a dependency for nothing.
fn fetch_site(origin: &str, url: &str) -> &'static str {
    let host = |u: &str| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    };
    let (Some(from), Some(to)) = (host(origin), host(url)) else {
        return "cross-site";
    };
    let site = |h: &str| {
        let labels: Vec<&str> = h.rsplitn(3, '.').collect();
        labels
            .iter()
            .take(2)
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join(".")
    };
    let same_scheme = origin.split(':').next().map(|s| s.replace("ws", "http"))
        == url.split(':').next().map(|s| s.replace("ws", "http"));
    if from == to && same_scheme {
        "same-origin"
    } else if site(&from) == site(&to) {
        "same-site"
    } else {
        "cross-site"
    }
}

/// A transport failure, described without the URL (see `plain::network`).
fn network(call: &'static str, err: &wreq::Error, proxy: Option<&UpstreamProxy>) -> UpstreamError {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_tls() {
        "TLS handshake failed"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_upgrade() || err.is_websocket() {
        "the WebSocket upgrade failed"
    } else if err.is_body() || err.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    };
    UpstreamError::Network {
        call,
        detail: super::through(proxy, super::with_sources(kind, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_site_follows_the_page_origin() {
        let o = "https://cto.new";
        assert_eq!(fetch_site(o, "https://cto.new/x"), "same-origin");
        assert_eq!(
            fetch_site(o, "https://clerk.cto.new/v1/client"),
            "same-site"
        );
        assert_eq!(
            fetch_site(o, "https://api.enginelabs.ai/chat"),
            "cross-site"
        );
        assert_eq!(fetch_site(o, "wss://api.enginelabs.ai/s"), "cross-site");
        assert_eq!(fetch_site(o, "not a url"), "cross-site");
    }

    #[test]
    fn page_headers_replace_the_user_agent_and_navigation_headers() {
        let mut h = HeaderMap::new();
        h.insert(USER_AGENT, HeaderValue::from_static("Chrome/147"));
        h.insert("origin", HeaderValue::from_static("https://cto.new"));
        let out = browser_headers(
            h,
            "https://cto.new",
            "wss://api.enginelabs.ai/s",
            FetchDest::WebSocket,
        );
        assert!(out.get(USER_AGENT).is_none());
        assert_eq!(out["origin"], "https://cto.new");
        assert_eq!(out["sec-fetch-mode"], "websocket");
        assert_eq!(out["sec-fetch-dest"], "websocket");
        assert_eq!(out["sec-fetch-site"], "cross-site");
        let mut h = HeaderMap::new();
        h.insert(USER_AGENT, HeaderValue::from_static("opencode/1.15.0"));
        let out = browser_headers(
            h,
            "https://cto.new",
            "https://api.enginelabs.ai/chat/completions",
            FetchDest::Program,
        );
        assert_eq!(out[USER_AGENT], "opencode/1.15.0");
        assert!(out.get("sec-fetch-mode").is_none());
    }
}
