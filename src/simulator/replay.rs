//! `simulate --replay FILE`: serves a capture (see [`crate::capture`]) as the upstream, so a
//! capture attached to a bug report runs the real client against what cto.new answered then.
//!
//! Each request gets the next unused recorded exchange with the same method and path (ids in
//! paths, like sessions and chat histories, match any id); a WebSocket gets the next recorded
//! socket on that path, and each frame is sent once the request it followed has come in (a
//! Gen-2 turn streams only after its trigger), with the recorded pauses (capped). A request
//! with no recorded answer gets a 404 that says so.
//!
//! Redacted values come back as stand-ins: a JWT that expires in a minute where the capture
//! has `"jwt": "<redacted>"`, a random string for any other credential, and the prompt the
//! client sent where the capture has `<prompt>` (the client recognises its turn by it).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::capture::format::body_text;
use crate::capture::redact::{PROMPT, REDACTED, secret_field};
use crate::capture::{Capture, Event, Exchange, SocketLog};

/// The longest pause kept between two replayed frames.
const MAX_GAP: Duration = Duration::from_millis(200);

struct Replay {
    exchanges: Vec<Exchange>,
    sockets: Vec<SocketLog>,
    used: Mutex<(HashSet<usize>, HashSet<usize>)>,
    /// The `seq`s of the requests received so far.
    received: watch::Sender<HashSet<usize>>,
    /// The prompt of the latest request whose capture had `<prompt>`.
    prompt: Mutex<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running replay server. Dropping it stops it.
pub struct ReplayServer {
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl ReplayServer {
    /// `http://HOST:PORT`: both the Clerk and the EngineLabs base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Reads a capture file.
pub fn load(path: &std::path::Path) -> Result<Capture, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let capture: Capture = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a capture: {e}", path.display()))?;
    if capture.version != crate::capture::format::VERSION {
        return Err(format!(
            "{} is a capture of version {}; this build reads version {}",
            path.display(),
            capture.version,
            crate::capture::format::VERSION
        ));
    }
    Ok(capture)
}

/// Serves `capture` on `addr` in a spawned task.
pub async fn start(capture: Capture, addr: SocketAddr) -> std::io::Result<ReplayServer> {
    let mut exchanges = Vec::new();
    let mut sockets = Vec::new();
    for e in capture.events {
        match e {
            Event::Http(x) => exchanges.push(x),
            Event::Socket(s) => sockets.push(s),
        }
    }
    let state = Arc::new(Replay {
        exchanges,
        sockets,
        used: Mutex::default(),
        received: watch::channel(HashSet::new()).0,
        prompt: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let app = Router::new()
        .route(
            "/engine-agent/chat-histories/{id}/buffer/stream",
            get(socket),
        )
        .fallback(http)
        .with_state(state);
    let stop = cancel.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(ReplayServer { addr, cancel })
}

/// A path with its id-like segments (8+ characters with a digit) made wild.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.len() >= 8 && seg.chars().any(|c| c.is_ascii_digit()) {
                "*"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn http(State(st): State<Arc<Replay>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 32 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let wanted = shape(&path);
    let found = {
        let mut used = lock(&st.used);
        let found = st.exchanges.iter().position(|x| {
            !used.0.contains(&x.seq)
                && x.method.eq_ignore_ascii_case(method.as_str())
                && shape(&x.path) == wanted
        });
        if let Some(i) = found {
            used.0.insert(st.exchanges[i].seq);
        }
        found
    };
    let Some(i) = found else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"error": format!("replay: no recorded answer left for {method} {path}")}),
            ),
        )
            .into_response();
    };
    let x = &st.exchanges[i];
    if x.status == 0 {
        // The recorded call got no answer (a network failure): neither does this one.
        return (
            StatusCode::BAD_GATEWAY,
            format!("replay: the recorded {method} {path} got no answer"),
        )
            .into_response();
    }
    if let Ok(live) = serde_json::from_slice::<Value>(&body)
        && let Some(prompt) = prompt_at(&x.request_body, &live)
    {
        *lock(&st.prompt) = prompt;
    }
    st.received.send_modify(|r| {
        r.insert(x.seq);
    });
    respond(x, &method)
}

/// The recorded answer with stand-ins for the redacted values.
fn respond(x: &Exchange, method: &Method) -> Response {
    let mut body = x.response_body.clone();
    stand_ins(&mut body);
    let text = body_text(&body).replace(REDACTED, "replayed");
    let status = StatusCode::from_u16(x.status).unwrap_or(StatusCode::OK);
    let mut resp = if method == Method::HEAD {
        status.into_response()
    } else {
        (status, text).into_response()
    };
    let skip = [
        "content-length",
        "transfer-encoding",
        "connection",
        "content-encoding",
    ];
    for (k, v) in &x.response_headers {
        if skip.contains(&k.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v))
        {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

/// Puts a fresh JWT where a `jwt` field was redacted, a random string in other credentials.
fn stand_ins(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if v.as_str() == Some(REDACTED) && secret_field(k) {
                    *v = Value::String(if k == "jwt" {
                        fake_jwt()
                    } else {
                        format!("replayed-{}", uuid::Uuid::new_v4().simple())
                    });
                } else {
                    stand_ins(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(stand_ins),
        _ => {}
    }
}

/// An unsigned JWT that expires in a minute (the client reads its claims, never checks it).
fn fake_jwt() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(json!({"iat": now, "exp": now + 60}).to_string());
    format!("{head}.{claims}.replayed")
}

/// The live request's text where the recorded request had `<prompt>` (base64-decoded when the
/// request says `encoded`).
fn prompt_at(recorded: &Value, live: &Value) -> Option<String> {
    let found = match (recorded, live) {
        (Value::String(r), Value::String(l)) if r == PROMPT => Some(l.clone()),
        (Value::Object(r), Value::Object(l)) => {
            r.iter().find_map(|(k, rv)| prompt_at(rv, l.get(k)?))
        }
        (Value::Array(r), Value::Array(l)) => {
            r.iter().zip(l).find_map(|(rv, lv)| prompt_at(rv, lv))
        }
        _ => None,
    }?;
    if live.get("encoded").and_then(Value::as_bool) == Some(true)
        && let Ok(bytes) = STANDARD.decode(found.as_bytes())
    {
        return Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    Some(found)
}

async fn socket(
    State(st): State<Arc<Replay>>,
    upgrade: WebSocketUpgrade,
    req: Request,
) -> Response {
    let wanted = shape(req.uri().path());
    let found = {
        let mut used = lock(&st.used);
        let found = st
            .sockets
            .iter()
            .position(|s| !used.1.contains(&s.seq) && shape(&s.path) == wanted);
        if let Some(i) = found {
            used.1.insert(st.sockets[i].seq);
        }
        found
    };
    match found {
        Some(i) => upgrade.on_upgrade(move |ws| replay_socket(st, i, ws)),
        None => (StatusCode::NOT_FOUND, "replay: no recorded socket left").into_response(),
    }
}

async fn replay_socket(st: Arc<Replay>, index: usize, ws: WebSocket) {
    let (mut tx, mut rx) = ws.split();
    let frames = st.sockets[index].frames.clone();
    let sender = async {
        let mut received = st.received.subscribe();
        let mut last_at = frames.first().map_or(0, |f| f.at_ms);
        for f in &frames {
            if let Some(after) = f.after {
                let _ = received.wait_for(|r| r.contains(&after)).await;
            }
            let gap = Duration::from_millis(f.at_ms.saturating_sub(last_at)).min(MAX_GAP);
            last_at = f.at_ms;
            tokio::time::sleep(gap).await;
            let prompt = lock(&st.prompt).clone();
            let text = with_prompt(&f.text, &prompt);
            if tx.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        // Stay open until the client closes (it does when the turn is over).
        std::future::pending::<()>().await;
    };
    let reader = async {
        while let Some(Ok(msg)) = rx.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    tokio::select! {
        () = sender => {}
        () = reader => {}
    }
}

/// A frame with the live prompt put back into its user echoes.
fn with_prompt(text: &str, prompt: &str) -> String {
    if !text.contains(PROMPT) {
        return text.to_string();
    }
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    if let Some(Value::String(buffer)) = v.get("buffer").cloned() {
        let inner: Vec<String> = serde_json::Deserializer::from_str(&buffer)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .map(|mut m| {
                put_prompt(&mut m, prompt);
                m.to_string()
            })
            .collect();
        let trailing = if buffer.ends_with('\n') { "\n" } else { "" };
        v["buffer"] = Value::String(inner.join("\n") + trailing);
    } else {
        put_prompt(&mut v, prompt);
    }
    v.to_string()
}

fn put_prompt(v: &mut Value, prompt: &str) {
    match v {
        Value::String(s) if s == PROMPT => *s = prompt.to_string(),
        Value::Object(map) => map.values_mut().for_each(|v| put_prompt(v, prompt)),
        Value::Array(items) => items.iter_mut().for_each(|v| put_prompt(v, prompt)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_match_any_id() {
        assert_eq!(
            shape("/v1/client/sessions/sess_2abcdefgh/tokens"),
            "/v1/client/sessions/*/tokens"
        );
        assert_eq!(shape("/chat/adapters"), "/chat/adapters");
    }

    #[test]
    fn the_live_prompt_goes_back_where_the_capture_has_the_placeholder() {
        let recorded = json!({"prompt": PROMPT, "encoded": true, "chatHistoryId": "x"});
        let live = json!({"prompt": STANDARD.encode("hé"), "encoded": true, "chatHistoryId": "y"});
        assert_eq!(prompt_at(&recorded, &live).as_deref(), Some("hé"));
        let frame = json!({"type": "update", "buffer": format!("{}\n", json!({"role": "user", "content": [{"type": "text", "text": PROMPT}]}))}).to_string();
        let back = with_prompt(&frame, "hé");
        assert!(back.contains("hé") && !back.contains(PROMPT), "{back}");
    }

    #[test]
    fn redacted_tokens_get_stand_ins() {
        let mut body = json!({"jwt": REDACTED, "access_token": REDACTED, "object": "token"});
        stand_ins(&mut body);
        let jwt = body["jwt"].as_str().unwrap_or_default();
        let payload = jwt.split('.').nth(1).unwrap_or_default();
        let claims: Value = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        assert!(claims["exp"].as_u64().is_some(), "{jwt}");
        assert!(
            body["access_token"]
                .as_str()
                .unwrap_or_default()
                .starts_with("replayed-")
        );
    }
}
