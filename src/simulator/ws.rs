//! The simulated streaming socket `GET /engine-agent/chat-histories/{id}/buffer/stream`
//! (protocol notes §5): token checks per generation, the connect preamble (idle state, history,
//! replays), live frames of the running and later turns, `ping`/`pong`, and the socket faults.
//!
//! A socket never polls: it waits on the history's `watch` channel, its own receive side (so a
//! client close is seen at once) and the simulator's shutdown token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use serde_json::json;

use super::respond::message;
use super::script::Frame;
use super::snapshot::history;
use super::state::{Generation, History, SimState, TurnLog};
use super::util::lock;

/// `GET /engine-agent/chat-histories/{id}/buffer/stream`: checks the query, then upgrades.
pub(crate) async fn stream(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(hist) = lock(&st.inner).histories.get(&id).cloned() else {
        return message(StatusCode::NOT_FOUND, "Chat history not found");
    };
    let token = query.get("token").map(String::as_str).unwrap_or("");
    let allowed = match hist.generation {
        Generation::Gen1 => token == hist.user_id,
        Generation::Gen2 => {
            token.split_once(':') == Some((hist.user_id.as_str(), hist.org_id.as_str()))
                && query.get("workspaceId") == hist.workspace_id.as_ref()
        }
    };
    if !allowed {
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    // Where the socket starts is fixed now, before the handshake is answered: a client that
    // triggers as soon as its handshake completed must find its turn live on this socket, even
    // when the upgraded socket's task only starts running after the turn's frames were made.
    let mut changes = hist.changed.subscribe();
    changes.borrow_and_update();
    let start = {
        let log = lock(&hist.log);
        preamble(&hist, &log, &st)
    };
    upgrade
        .on_upgrade(move |socket| serve_socket(st, hist, socket, changes, start))
        .into_response()
}

/// Keeps `ws_open_now` right whichever way a socket ends.
struct OpenGuard(Arc<SimState>);

impl OpenGuard {
    fn new(st: &Arc<SimState>) -> OpenGuard {
        let mut stats = lock(&st.stats);
        stats.ws_opened += 1;
        stats.ws_open_now += 1;
        OpenGuard(Arc::clone(st))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut stats = lock(&self.0.stats);
        stats.ws_open_now = stats.ws_open_now.saturating_sub(1);
    }
}

fn text(v: serde_json::Value) -> Frame {
    Frame {
        text: v.to_string().into(),
        assistant: false,
    }
}

/// Where a socket stands: the turn it is on (may be one past the last, waiting for the next) and
/// how many of that turn's frames it has already sent or skipped.
struct Cursor {
    turn: usize,
    pos: usize,
}

/// The frames sent right after connect, and where live streaming starts.
fn preamble(hist: &History, log: &TurnLog, st: &SimState) -> (Vec<Frame>, Cursor) {
    let faults = lock(&st.faults).clone();
    let len = log.turns.len();
    let running = log.turns.last().is_some_and(|t| t.running());
    let mut out = Vec::new();
    if running || !faults.no_idle_state_at_connect {
        out.push(text(
            json!({"type": "state", "state": {"inProgress": running}}),
        ));
    }
    if let Some(snapshot) = history(log, !faults.history_without_running_turn) {
        out.push(text(snapshot));
    }
    let (cursor, previous) = match hist.generation {
        // Gen-1 replays the current turn from its start: the previous one is the one before.
        Generation::Gen1 => (
            Cursor {
                turn: len.saturating_sub(1),
                pos: 0,
            },
            len.checked_sub(2),
        ),
        // Gen-2 loses what a running turn produced before this socket existed.
        Generation::Gen2 if running => (
            Cursor {
                turn: len - 1,
                pos: log.turns[len - 1].frames().len(),
            },
            len.checked_sub(2),
        ),
        Generation::Gen2 => (Cursor { turn: len, pos: 0 }, len.checked_sub(1)),
    };
    if faults.replay_previous_turn
        && let Some(prev) = previous.and_then(|i| log.turns.get(i)).filter(|t| t.done)
    {
        out.extend(prev.frames().iter().cloned());
    }
    (out, cursor)
}

/// Frames the cursor has not sent yet, each with its turn index; moves the cursor past them.
fn collect(log: &TurnLog, cursor: &mut Cursor) -> Vec<(usize, Frame)> {
    let mut batch = Vec::new();
    while let Some(turn) = log.turns.get(cursor.turn) {
        let frames = turn.frames();
        if cursor.pos < frames.len() {
            batch.extend(
                frames[cursor.pos..]
                    .iter()
                    .map(|f| (cursor.turn, f.clone())),
            );
            cursor.pos = frames.len();
        }
        // A silent turn never ends: move on once a later turn exists.
        let superseded = turn.silent && cursor.turn + 1 < log.turns.len();
        if !(turn.done || superseded) {
            break;
        }
        cursor.turn += 1;
        cursor.pos = 0;
    }
    batch
}

/// Counts a client-side close as early when the socket was inside a turn that had not ended.
fn client_gone(st: &SimState, hist: &History, cursor: &Cursor) {
    let mid_turn = cursor.turn < lock(&hist.log).turns.len();
    if mid_turn {
        lock(&st.stats).ws_closed_early += 1;
    }
}

async fn serve_socket(
    st: Arc<SimState>,
    hist: Arc<History>,
    mut socket: WebSocket,
    mut changes: tokio::sync::watch::Receiver<u64>,
    (initial, mut cursor): (Vec<Frame>, Cursor),
) {
    let _open = OpenGuard::new(&st);
    for f in initial {
        if socket.feed(Message::Text(f.text)).await.is_err() {
            return client_gone(&st, &hist, &cursor);
        }
    }
    if socket.flush().await.is_err() {
        return client_gone(&st, &hist, &cursor);
    }
    // Assistant frames sent on this socket for the turn `counted_turn` (for `ws_drop_after`).
    let mut counted_turn = usize::MAX;
    let mut assistant_sent: u32 = 0;
    loop {
        changes.borrow_and_update();
        let batch = collect(&lock(&hist.log), &mut cursor);
        let drop_after = lock(&st.faults).ws_drop_after;
        for (turn, frame) in batch {
            if turn != counted_turn {
                counted_turn = turn;
                assistant_sent = 0;
            }
            let assistant = frame.assistant;
            if socket.feed(Message::Text(frame.text)).await.is_err() {
                lock(&st.stats).ws_closed_early += 1;
                return;
            }
            if assistant {
                assistant_sent += 1;
                if drop_after.is_some_and(|n| assistant_sent >= n) {
                    // Abrupt end: flush what was promised, then drop without a close frame.
                    let _ = socket.flush().await;
                    return;
                }
            }
        }
        if socket.flush().await.is_err() {
            return client_gone(&st, &hist, &cursor);
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(t))) if t.as_str() == "ping" => {
                    if socket.send(Message::Text("pong".into())).await.is_err() {
                        return client_gone(&st, &hist, &cursor);
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    // tungstenite queued the close reply; send it so the client's close is clean.
                    let _ = socket.flush().await;
                    return client_gone(&st, &hist, &cursor);
                }
                Some(Err(_)) | None => return client_gone(&st, &hist, &cursor),
                Some(Ok(_)) => {}
            },
            () = st.cancel.cancelled() => return,
        }
    }
}
