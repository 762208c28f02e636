//! Resuming a turn after its WebSocket dropped: the reconnect schedule and its budgets.
//!
//! What the protocol gives (notes §5.1): a Gen-1 history replays the running turn's frames from
//! its start to every new socket (Gen-1 clients trigger first and connect after, so this replay
//! is what they rely on even without a drop). A reconnect therefore sees the same messages
//! again, and the tracker's [`TextLedger`](crate::upstream::ledger::TextLedger) skips the part
//! already delivered. Gen-2 does not replay a running turn (a socket that connects mid-turn only
//! gets live frames), but it pushes a `history` snapshot right after connect (notes §5.3): the
//! tracker finds the in-progress message in it by the text already delivered
//! ([`crate::upstream::snapshot`]), hands on only the rest, and live frames continue from there.
//! When the snapshot holds no such text, the turn ends with an error instead of silently losing
//! text. Whether a drop can be resumed at all is [`TurnTracker::can_resume`]'s call.
//!
//! [`TurnTracker::can_resume`]: crate::upstream::frame::TurnTracker::can_resume

use std::time::Duration;

use super::super::UpstreamConfig;
use super::super::transport::{Socket, Transport};
use super::connect;

/// Pauses before the reconnect attempts that follow a drop. Each attempt's handshake is bounded
/// by the request timeout; the count starts again once a resumed socket delivers new text.
pub const BACKOFF: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(900),
];

/// Reconnects allowed for one turn in total, progress or not: a server that keeps dropping the
/// socket after a little new text must not keep the turn alive forever.
pub const MAX_RECONNECTS: u32 = 10;

/// The reconnects one turn has spent.
#[derive(Debug, Default)]
pub(super) struct Budget {
    /// Reconnects in a row whose socket brought no new text (indexes [`BACKOFF`]).
    fruitless: usize,
    /// Reconnects in all (bounded by [`MAX_RECONNECTS`]).
    pub(super) total: u32,
}

impl Budget {
    /// The socket that just dropped had delivered new text: the backoff starts again.
    pub(super) fn progressed(&mut self) {
        self.fruitless = 0;
    }
}

/// Tries new sockets after the pauses of [`BACKOFF`] while the budget allows; `Err` with the
/// last reason when every attempt failed. The consumer going away drops this future, and with
/// it any handshake in flight.
pub(super) async fn reconnect(
    transport: &Transport,
    cfg: &UpstreamConfig,
    url: &str,
    budget: &mut Budget,
) -> Result<Socket, String> {
    let mut last = "the socket kept dropping without new text".to_string();
    while let Some(pause) = BACKOFF.get(budget.fruitless).copied() {
        if budget.total >= MAX_RECONNECTS {
            return Err(format!("{last} (limit of {MAX_RECONNECTS} reached)"));
        }
        budget.fruitless += 1;
        budget.total += 1;
        metrics::counter!(crate::metrics::WS_RECONNECTS).increment(1);
        tokio::time::sleep(pause).await;
        match connect(transport, cfg, url).await {
            Ok(ws) => return Ok(ws),
            Err(e) => {
                tracing::debug!(error = %e, attempt = budget.total, "reconnect failed");
                last = e.to_string();
            }
        }
    }
    Err(last)
}
