//! The loop shared by every streamed answer (OpenAI chunks, Anthropic events): pull upstream
//! events, let the API's shape turn each into SSE events, remember the conversation when the
//! turn finished, and end every stream properly, with an error event on failure.
//!
//! The stream owns the upstream [`Running`] turn: when the client disconnects, axum drops the
//! stream, which drops the turn, which closes the upstream WebSocket.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::Event;
use futures_util::Stream;

use crate::relay::Running;
use crate::server::AppState;
use crate::upstream::{TurnEvent, UpstreamError};

/// What an API surface adds to the shared loop.
pub trait Shape: Send + 'static {
    /// Queues the SSE events for one upstream event; true when the turn finished.
    fn push_event(&mut self, ev: &TurnEvent, out: &mut VecDeque<Event>) -> bool;
    /// The visible answer so far (what the client will echo back next turn).
    fn answer(&self) -> &str;
    /// Queues the closing events of a finished turn.
    fn finish(&mut self, out: &mut VecDeque<Event>);
    /// Queues the error events of a failed turn.
    fn fail(&mut self, e: UpstreamError, out: &mut VecDeque<Event>);
}

struct Pump<S> {
    app: AppState,
    running: Running,
    shape: S,
    pending: VecDeque<Event>,
    done: bool,
}

/// Streams `first` and the rest of the turn through `shape`, after the `opening` events.
pub fn pump<S: Shape>(
    app: AppState,
    running: Running,
    first: TurnEvent,
    shape: S,
    opening: Vec<Event>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let st = Pump {
        app,
        running,
        shape,
        pending: opening.into(),
        done: false,
    };
    futures_util::stream::unfold((st, Some(first)), |(mut st, mut first)| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok(ev), (st, first)));
            }
            if st.done {
                return None;
            }
            let next = match first.take() {
                Some(ev) => Some(Ok(ev)),
                None => st.running.turn.next().await,
            };
            match next {
                Some(Ok(ev)) => {
                    if st.shape.push_event(&ev, &mut st.pending) {
                        st.running
                            .completion
                            .remember(st.app.store(), st.shape.answer())
                            .await;
                        st.shape.finish(&mut st.pending);
                        st.done = true;
                    }
                }
                Some(Err(e)) => {
                    st.shape.fail(e, &mut st.pending);
                    st.done = true;
                }
                None => {
                    let e = UpstreamError::StreamClosed(
                        "the stream ended before the turn finished".into(),
                    );
                    st.shape.fail(e, &mut st.pending);
                    st.done = true;
                }
            }
        }
    })
}
