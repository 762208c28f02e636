//! [`TurnReader`]: one turn's WebSocket, read by whoever asks for the next event (the server's
//! response body). No task and no channel sit in between: a frame wakes the consumer once, and
//! the socket is read only as fast as the answer is taken (TCP holds back the rest).
//!
//! While the consumer waits, the reader sends the `ping` heartbeat and enforces the idle
//! timeout; a socket that drops mid-turn is replaced when the turn can be resumed without losing
//! text (see [`super::reconnect`]), else the turn ends with an error. The socket is closed as
//! soon as the turn ends, or when the reader is dropped (the client went away).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use super::super::frame::TurnTracker;
use super::super::transport::{Socket, Transport, WsEvent};
use super::super::{TurnEvent, UpstreamConfig, UpstreamError};
use super::reconnect::{Budget, reconnect};

type Item = Result<TurnEvent, UpstreamError>;

/// A connected turn, read on demand. Dropping it closes the socket.
pub struct TurnReader {
    /// The open socket; `None` once the turn ended (then only `pending` is left to hand out).
    ws: Option<Socket>,
    /// Where a replacement socket comes from when this one drops mid-turn.
    transport: Transport,
    url: String,
    cfg: Arc<UpstreamConfig>,
    tracker: TurnTracker,
    /// Events decoded but not handed out yet: one frame may carry several, and the end of the
    /// turn (or its error) waits behind them.
    pending: VecDeque<Item>,
    /// The `ping` heartbeat of the current socket.
    ping: Interval,
    /// When upstream silence becomes a failure. Every frame moves it on, and so does the start
    /// of every wait: time the consumer spent elsewhere is not upstream silence.
    idle: Pin<Box<Sleep>>,
    /// The current socket delivered a new event (a drop after progress restarts the backoff).
    progressed: bool,
    budget: Budget,
}

/// What one wait on the socket brought.
enum Woke {
    Ping,
    Frame(String),
    /// A control frame: not text, but not silence either.
    Other,
    Dropped(String),
    Idle,
}

impl TurnReader {
    pub(super) fn new(
        ws: Socket,
        transport: Transport,
        url: String,
        cfg: Arc<UpstreamConfig>,
        tracker: TurnTracker,
    ) -> Self {
        TurnReader {
            ws: Some(ws),
            transport,
            url,
            ping: heartbeat(cfg.ping_interval),
            idle: Box::pin(tokio::time::sleep(cfg.idle_timeout)),
            cfg,
            tracker,
            pending: VecDeque::new(),
            progressed: false,
            budget: Budget::default(),
        }
    }

    /// Frames from now on may belong to our turn. Call right before sending the trigger (Gen-2;
    /// a Gen-1 tracker is armed from the start). Frames still unread are read as ours: the
    /// tracker ignores the idle state and the snapshot a socket starts with.
    pub fn arm(&mut self) {
        self.tracker.arm();
    }

    /// The next event of the turn; `None` after `Finished` or an error was handed out. Cancelling
    /// it while it waits for a frame loses nothing; cancelling it during a reconnect ends the turn.
    pub async fn next(&mut self) -> Option<Item> {
        let mut waiting = false;
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            self.ws.as_ref()?;
            if !waiting {
                waiting = true;
                self.reset_idle();
            }
            self.wait().await;
        }
    }

    /// Waits for one thing to happen on the socket and deals with it.
    async fn wait(&mut self) {
        let Some(ws) = self.ws.as_mut() else {
            return;
        };
        let woke = tokio::select! {
            biased;
            _ = self.ping.tick() => Woke::Ping,
            msg = ws.recv() => match msg {
                None => Woke::Dropped("the socket ended".to_string()),
                Some(Err(e)) => Woke::Dropped(e),
                Some(Ok(WsEvent::Closed(why))) => Woke::Dropped(why),
                Some(Ok(WsEvent::Text(t))) => Woke::Frame(t),
                Some(Ok(WsEvent::Other)) => Woke::Other,
            },
            () = self.idle.as_mut() => Woke::Idle,
        };
        match woke {
            Woke::Ping => {
                let sent = ws.send_text("ping").await;
                if let Err(e) = sent {
                    self.dropped(format!("sending ping failed: {e}")).await;
                }
            }
            Woke::Frame(text) => {
                self.reset_idle();
                self.frame(&text);
            }
            Woke::Other => self.reset_idle(),
            Woke::Dropped(why) => self.dropped(why).await,
            Woke::Idle => self.end(Some(UpstreamError::IdleTimeout(self.cfg.idle_timeout))),
        }
    }

    /// Feeds one text frame to the tracker and queues what it means.
    fn frame(&mut self, text: &str) {
        let events = self.tracker.feed(text);
        self.progressed |= !events.is_empty();
        self.pending.extend(events.into_iter().map(Ok));
        if self.tracker.is_finished() {
            self.end(None);
        } else if let Some(why) = self.tracker.resume_failed() {
            let err = UpstreamError::StreamClosed(why.to_string());
            self.end(Some(err));
        }
    }

    /// The socket ended or failed before the turn did: resume on a new one with backoff when
    /// the turn allows it (the tracker skips the text already delivered (Gen-1) or picks up from
    /// the snapshot (Gen-2)), else end the turn with the reason.
    async fn dropped(&mut self, why: String) {
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(self.cfg.request_timeout, ws.close()).await;
        }
        if !self.tracker.can_resume() {
            // Gen-2 before any text: a new socket only gets live frames and a snapshot with
            // nothing to find our text by, so what the server sent meanwhile could be lost.
            // Before our trigger nothing of the turn can be lost yet, but the caller is about to
            // trigger on a dead socket: it fails the same way.
            let err = UpstreamError::StreamClosed(if self.tracker.is_armed() {
                format!("{why}; the stream dropped and Gen-2 cannot resume it without losing text")
            } else {
                why
            });
            return self.end(Some(err));
        }
        if std::mem::take(&mut self.progressed) {
            self.budget.progressed();
        }
        // Boxed: the handshake's future is large and rare, and would otherwise swell every
        // `next()` future of every turn.
        let attempt = Box::pin(reconnect(
            &self.transport,
            &self.cfg,
            &self.url,
            &mut self.budget,
        ))
        .await;
        match attempt {
            Ok(ws) => {
                tracing::info!(
                    reconnects = self.budget.total,
                    "resuming the turn on a new socket"
                );
                self.ws = Some(ws);
                self.tracker.reconnected();
                self.ping = heartbeat(self.cfg.ping_interval);
                self.reset_idle();
            }
            Err(last) => {
                let total = self.budget.total;
                self.end(Some(UpstreamError::StreamClosed(format!(
                    "{why}; resuming failed after {total} reconnect attempt(s): {last}"
                ))));
            }
        }
    }

    /// The turn is over: queue its error, if any, behind the events and close the socket.
    fn end(&mut self, failure: Option<UpstreamError>) {
        if let Some(err) = failure {
            tracing::debug!(error = %err, "upstream stream failed");
            self.pending.push_back(Err(err));
        }
        if let Some(ws) = self.ws.take() {
            close_soon(ws, self.cfg.request_timeout);
        }
    }

    fn reset_idle(&mut self) {
        let deadline = Instant::now() + self.cfg.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }
}

impl Drop for TurnReader {
    fn drop(&mut self) {
        if let Some(ws) = self.ws.take() {
            tracing::debug!("turn consumer went away; closing the stream");
            close_soon(ws, self.cfg.request_timeout);
        }
    }
}

/// The heartbeat of a new socket: the first `ping` one interval after connecting.
fn heartbeat(every: Duration) -> Interval {
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping
}

/// Closes `ws` without waiting for it: the close frame normally goes out at once; when the
/// socket cannot take it now, a small task finishes the close within `limit`. Outside a runtime
/// the socket is only dropped, which ends the connection all the same.
fn close_soon(mut ws: Socket, limit: Duration) {
    if ws.close().now_or_never().is_some() {
        return;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = tokio::time::timeout(limit, ws.close()).await;
        });
    }
}
