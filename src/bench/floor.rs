//! The floor: a bare relay that does per request what the proxy cannot avoid, and nothing else.
//!
//! For each `POST /v1/chat/completions` it makes the upstream calls of a new Gen-2 turn (create
//! the hosted project, open the WebSocket, `offers`, the trigger) and copies every text frame of
//! the socket to the client as an SSE `data:` line, verbatim, until the turn's closing
//! `state{inProgress:false}` frame; then `data: [DONE]`. No request parsing, no frame parsing
//! (two byte searches find the end), no store, no auth, no metrics, and no task or channel
//! between the socket and the response body: the body stream reads the socket itself.
//!
//! The session, the JWT and the account's model are set up once at start by the project's own
//! client (one warm-up turn); per request only the cached JWT is asked for, as the proxy does.
//! The bench starts it as `enginelabs-2api bench --floor-server --port P` with the simulator's
//! URL and a cookie of its own account in [`UPSTREAM_VAR`] and [`COOKIE_VAR`].

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::Result;
use crate::upstream::stream::{WsAuth, ws_url};
use crate::upstream::{
    Account, EngineClient, Identity, TurnEvent, TurnRequest, UpstreamConfig, clerk,
};

/// The simulator's base URL (Clerk and engine alike).
pub const UPSTREAM_VAR: &str = "EL2A_FLOOR_UPSTREAM";
/// The `__client` cookie of the floor's simulated account.
pub const COOKIE_VAR: &str = "EL2A_FLOOR_COOKIE";

/// What every request shares.
struct Floor {
    client: EngineClient,
    account: Arc<Account>,
    identity: Identity,
    http: reqwest::Client,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves the floor relay on `127.0.0.1:port` until killed.
pub async fn serve(port: u16) -> Result<()> {
    let upstream = std::env::var(UPSTREAM_VAR).map_err(|_| format!("{UPSTREAM_VAR} is unset"))?;
    let cookie = std::env::var(COOKIE_VAR).map_err(|_| format!("{COOKIE_VAR} is unset"))?;
    let client = EngineClient::new(UpstreamConfig::with_urls(&upstream, &upstream))
        .map_err(|e| e.to_string())?;
    let account = Arc::new(Account::new("floor", &cookie).map_err(|e| e.to_string())?);
    let mut turn = client
        .start_turn(
            &account,
            TurnRequest {
                model: "GPT5".to_string(),
                prompt: "floor warm-up".to_string(),
                continue_history: None,
                images: Vec::new(),
            },
        )
        .await
        .map_err(|e| format!("floor warm-up: {e}"))?;
    while let Some(event) = turn.next().await {
        match event.map_err(|e| format!("floor warm-up: {e}"))? {
            TurnEvent::Finished { .. } => break,
            _ => continue,
        }
    }
    let identity = account
        .identity()
        .ok_or("floor: no identity after warm-up")?;
    let floor = Arc::new(Floor {
        client,
        account,
        identity,
        http: reqwest::Client::new(),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/chat/completions", post(relay))
        .with_state(floor);
    // No Nagle towards the client, as the proxy's own listener: a floor that waited for
    // delayed ACKs would flatter the proxy.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("floor: cannot listen on port {port}: {e}"))?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, app)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn relay(State(floor): State<Arc<Floor>>, _body: Bytes) -> Response {
    match floor.open().await {
        Ok(socket) => Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(frames(socket)))
            .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()),
        Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
    }
}

/// Where the body stream stands.
enum Phase {
    /// Copying frames; `started` once the turn's `inProgress:true` went by.
    Frames {
        socket: Box<Socket>,
        started: bool,
    },
    /// The turn ended: `[DONE]` is next.
    Done,
    Ended,
}

/// The socket's text frames as SSE lines, then `[DONE]`.
fn frames(
    socket: Socket,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, std::io::Error>> {
    let start = Phase::Frames {
        socket: Box::new(socket),
        started: false,
    };
    futures_util::stream::unfold(start, |phase| async move {
        match phase {
            Phase::Frames {
                mut socket,
                mut started,
            } => loop {
                match socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let t = text.as_str();
                        started |= t.contains(r#""inProgress":true"#);
                        let last = started && t.contains(r#""inProgress":false"#);
                        let line = Bytes::from(format!("data: {t}\n\n"));
                        let next = if last {
                            Phase::Done
                        } else {
                            Phase::Frames { socket, started }
                        };
                        return Some((Ok(line), next));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        return Some((Err(std::io::Error::other(e.to_string())), Phase::Ended));
                    }
                    None => {
                        return Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), Phase::Ended));
                    }
                }
            },
            Phase::Done => Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), Phase::Ended)),
            Phase::Ended => None,
        }
    })
}

impl Floor {
    /// The calls of a new Gen-2 turn, in the proxy's order: project, socket, offers, trigger.
    async fn open(&self) -> std::result::Result<Socket, String> {
        let cfg = self.client.config();
        let jwt = clerk::jwt(self.client.http(), cfg, &self.account)
            .await
            .map_err(|e| e.to_string())?;
        let project = self
            .call(
                &jwt,
                "/projects/create-hosted",
                json!({"projectName": "floor"}),
            )
            .await?;
        let field = |name: &str| project[name].as_str().unwrap_or_default().to_string();
        let (history, workspace) = (field("projectId"), field("workspaceId"));
        let url = ws_url(
            cfg,
            &history,
            WsAuth::Gen2 {
                user_id: &self.identity.user_id,
                org_id: self.identity.org_id.as_deref(),
                workspace_id: Some(&workspace),
            },
        );
        let mut req = url.into_client_request().map_err(|e| e.to_string())?;
        if let Ok(origin) = cfg.origin.parse() {
            req.headers_mut().insert(header::ORIGIN, origin);
        }
        // The proxy's own buffer sizes: a bigger read buffer costs page faults per socket.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
            .await
            .map_err(|e| format!("floor socket: {e}"))?;
        let offers = json!({"chatHistoryId": history, "surface": "ENGINE_AGENT"});
        self.call(&jwt, "/engine-agent/offers", offers).await?;
        let prompt = base64::engine::general_purpose::STANDARD.encode("bench floor");
        let trigger = json!({"prompt": prompt, "chatHistoryId": history, "encoded": true});
        self.call(&jwt, "/engine-agent/chat", trigger).await?;
        Ok(socket)
    }

    /// One authorised JSON `POST` to the engine; its JSON answer (`null` when it has none).
    async fn call(&self, jwt: &str, path: &str, body: Value) -> std::result::Result<Value, String> {
        let cfg = self.client.config();
        let resp = self
            .http
            .post(format!("{}{path}", cfg.engine_base_url))
            .bearer_auth(jwt)
            .header(header::ORIGIN, &cfg.origin)
            .header(header::USER_AGENT, &cfg.user_agent)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("floor {path}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("floor {path}: HTTP {}", resp.status()));
        }
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}
