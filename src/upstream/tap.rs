//! [`FrameTap`]: a copy of every WebSocket text frame a client's turns receive, with the time
//! each arrived. Only `enginelabs-2api doctor` sets one: it reports which frame types the
//! upstream sends (and which we do not know) and how long the first frame took. The proxy's
//! own turns run without a tap and pay nothing for it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// One frame as it arrived.
#[derive(Debug, Clone)]
pub struct TappedFrame {
    pub at: Instant,
    pub text: String,
}

/// A shared, append-only list of frames; clones share it.
#[derive(Debug, Clone, Default)]
pub struct FrameTap(Arc<Mutex<Vec<TappedFrame>>>);

impl FrameTap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a frame (the heartbeat's `pong` and blank frames are left out).
    pub fn record(&self, text: &str) {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed == "pong" {
            return;
        }
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(TappedFrame {
                at: Instant::now(),
                text: trimmed.to_string(),
            });
    }

    /// Every frame recorded since the last `take`, in order.
    pub fn take(&self) -> Vec<TappedFrame> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_without_heartbeats_and_take_empties() {
        let tap = FrameTap::new();
        let clone = tap.clone();
        tap.record("{\"type\":\"state\"}");
        clone.record("pong");
        clone.record("  ");
        clone.record("{\"type\":\"update\"}");
        let frames: Vec<String> = tap.take().into_iter().map(|f| f.text).collect();
        assert_eq!(frames, ["{\"type\":\"state\"}", "{\"type\":\"update\"}"]);
        assert!(tap.take().is_empty());
    }
}
