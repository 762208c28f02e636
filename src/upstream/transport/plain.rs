//! The default stack: reqwest for HTTP and tokio-tungstenite for the stream, both over rustls
//! with the system's roots. No browser fingerprint: the headers say Chrome, the TLS handshake
//! says rustls. Plain clients have worked against cto.new so far (see the README).

use futures_util::{SinkExt as _, StreamExt as _};
use http::HeaderMap;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::proxy::{UpstreamProxy, tunnel};
use super::{
    Download, Opened, Reply, Request, WS_CALL, WS_MAX_MESSAGE, WS_READ_BUFFER, WsEvent,
    closed_by_server, refused,
};
use crate::capture::Recorder;
use crate::upstream::{UpstreamConfig, UpstreamError};

/// The HTTP client (one connection pool) and the WebSocket connector. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    http: reqwest::Client,
    /// Downloads clients' image URLs: public addresses only unless allowed (see `is_public`).
    images: reqwest::Client,
    proxy: Option<UpstreamProxy>,
    allow_private_images: bool,
    /// Set by `doctor --capture`: every call is recorded.
    recorder: Option<Recorder>,
}

impl Transport {
    /// Named in the start-up log and `/healthz`.
    pub const NAME: &'static str = "plain (reqwest + tokio-tungstenite, rustls)";

    /// Records every call from now on (see [`crate::capture`]).
    pub fn set_recorder(&mut self, recorder: Recorder) {
        self.recorder = Some(recorder);
    }

    pub fn new(cfg: &UpstreamConfig) -> Result<Self, UpstreamError> {
        let failed = |e: reqwest::Error| UpstreamError::Network {
            call: "http client",
            detail: e.to_string(),
        };
        let builder = || -> Result<reqwest::ClientBuilder, UpstreamError> {
            let b = reqwest::Client::builder()
                .connect_timeout(cfg.request_timeout)
                .timeout(cfg.request_timeout)
                .pool_idle_timeout(std::time::Duration::from_secs(90))
                .pool_max_idle_per_host(64)
                .user_agent(cfg.user_agent.clone());
            // Environment proxies are ignored: the WebSocket would not follow them (see `proxy`).
            Ok(match &cfg.proxy {
                Some(p) => b.proxy(reqwest::Proxy::all(p.url().as_str()).map_err(failed)?),
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
            images = images.redirect(reqwest::redirect::Policy::custom(|attempt| {
                match super::image_redirect(attempt.url().as_str(), attempt.previous().len()) {
                    super::ImageRedirect::Follow => attempt.follow(),
                    super::ImageRedirect::Stop => attempt.stop(),
                    super::ImageRedirect::Refuse(why) => attempt.error(why),
                }
            }));
        }
        Ok(Transport {
            http: builder()?.build().map_err(failed)?,
            images: images.build().map_err(failed)?,
            proxy: cfg.proxy.clone(),
            allow_private_images: cfg.allow_private_image_urls,
            recorder: None,
        })
    }

    fn build(&self, req: Request) -> reqwest::RequestBuilder {
        self.build_on(&self.http, req)
    }

    fn build_on(&self, client: &reqwest::Client, req: Request) -> reqwest::RequestBuilder {
        let mut b = client.request(req.method, &req.url).headers(req.headers);
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
            .build(req)
            .send()
            .await
            .map_err(|e| network(call, &e, self.proxy.as_ref()))?;
        let host = resp.url().host_str().unwrap_or_default().to_string();
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
    /// its body still to be read, or a refusal read whole. Only the request's own timeout bounds
    /// it (give a long one to a long stream): the caller bounds the wait for the head and the
    /// silences of the body.
    pub async fn open(&self, call: &'static str, req: Request) -> Result<Opened, UpstreamError> {
        req.check(call)?;
        let seq = super::record_sent(self.recorder.as_ref(), &req);
        let resp = self
            .build(req)
            .send()
            .await
            .map_err(|e| network(call, &e, self.proxy.as_ref()))?;
        let host = resp.url().host_str().unwrap_or_default().to_string();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let proxy = self.proxy.clone();
        let chunks = futures_util::stream::unfold(Some(resp), move |resp| {
            let proxy = proxy.clone();
            async move {
                let mut resp = resp?;
                match resp.chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(resp))),
                    Ok(None) => None,
                    // Nothing follows an error.
                    Err(e) => {
                        let why = super::with_sources("reading the answer failed", &e);
                        Some((Err(super::through(proxy.as_ref(), why)), None))
                    }
                }
            }
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
            .build_on(&self.images, req)
            .send()
            .await
            .map_err(|e| super::full_chain(&e))?;
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let chunks = futures_util::stream::unfold(Some(resp), |resp| async move {
            let mut resp = resp?;
            match resp.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(resp))),
                Ok(None) => None,
                // Nothing follows an error.
                Err(e) => Some((Err(e.to_string()), None)),
            }
        });
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
        let mut req = url
            .into_client_request()
            .map_err(|e| UpstreamError::Protocol {
                call: WS_CALL,
                detail: format!("bad stream URL: {e}"),
            })?;
        req.headers_mut().extend(headers);
        let config = tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(WS_READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(WS_MAX_MESSAGE));
        let connected = match &self.proxy {
            None => tokio_tungstenite::connect_async_with_config(req, Some(config), false).await,
            Some(proxy) => {
                let target = url::Url::parse(url).ok();
                let (host, port) = target
                    .as_ref()
                    .and_then(|u| Some((u.host_str()?, u.port_or_known_default()?)))
                    .ok_or_else(|| UpstreamError::Protocol {
                        call: WS_CALL,
                        detail: "the stream URL has no host".into(),
                    })?;
                let tcp =
                    tunnel(proxy, host, port)
                        .await
                        .map_err(|detail| UpstreamError::Network {
                            call: WS_CALL,
                            detail,
                        })?;
                tokio_tungstenite::client_async_tls_with_config(req, tcp, Some(config), None).await
            }
        };
        match connected {
            Ok((ws, _)) => Ok(Socket(ws)),
            Err(tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                Err(refused(url, resp.status().as_u16(), resp.headers(), &body))
            }
            Err(e) => Err(UpstreamError::Network {
                call: WS_CALL,
                detail: super::through(self.proxy.as_ref(), e.to_string()),
            }),
        }
    }
}

/// DNS of the image downloader: public addresses only.
struct PublicDns;

impl reqwest::dns::Resolve for PublicDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = super::public_addrs(host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An open stream. Dropping it drops the connection.
pub struct Socket(WebSocketStream<MaybeTlsStream<TcpStream>>);

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
                    .map(|f| (u16::from(f.code), f.reason.as_str())),
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
        let _ = self.0.close(None).await;
    }
}

/// A transport failure. The URL is dropped from the message: it is not secret today, but
/// query strings are where secrets would end up if the protocol changed.
fn network(
    call: &'static str,
    err: &reqwest::Error,
    proxy: Option<&UpstreamProxy>,
) -> UpstreamError {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
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
