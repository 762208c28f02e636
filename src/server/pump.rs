//! The loop shared by every streamed answer (OpenAI chunks, Anthropic and Responses events):
//! pull upstream events, let the API's [`ApiEvents`] turn each into SSE events, remember the conversation when the
//! turn finished, and end every stream properly, with an error event on failure.
//!
//! The stream owns the upstream [`Running`](crate::relay::Running) turn: when the client disconnects, axum drops the
//! stream, which drops the turn, which closes the upstream WebSocket.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::Event;
use futures_util::Stream;

use super::answer::Answer;
use super::turn::Started;
use crate::server::AppState;
use crate::upstream::{TurnEvent, UpstreamError};

/// What an API surface adds to the shared loop: its SSE events for each upstream event
/// (`ChatChunks`, `MessageEvents`, `ResponseEvents`).
pub trait ApiEvents: Send + 'static {
    /// Queues the SSE events for one upstream event (`answer` already includes it). Not
    /// called for `Finished`: see [`ApiEvents::finish`].
    fn push_event(&mut self, ev: &TurnEvent, answer: &Answer, out: &mut VecDeque<Event>);
    /// Queues the closing events of a finished turn.
    fn finish(&mut self, answer: &Answer, out: &mut VecDeque<Event>);
    /// Queues the error events of a failed turn.
    fn fail(&mut self, e: UpstreamError, answer: &Answer, out: &mut VecDeque<Event>);
    /// A finished answer to keep under a key of its own besides conversation memory, with its
    /// whole conversation (the Responses API's `previous_response_id`).
    fn keep(&self, _answer: &Answer) -> Option<(String, String)> {
        None
    }
}

struct Pump<S> {
    app: AppState,
    running: crate::relay::Running,
    answer: Answer,
    events: S,
    pending: VecDeque<Event>,
    done: bool,
}

/// Streams the started turn through `events`, after the `opening` events.
pub fn pump<S: ApiEvents>(
    app: AppState,
    started: Started,
    events: S,
    opening: Vec<Event>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let Started { running, first } = started;
    let st = Pump {
        app,
        running,
        answer: Answer::default(),
        events,
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
                None => st.running.next().await,
            };
            match next {
                Some(Ok(ev)) => {
                    st.answer.push(&ev);
                    if matches!(ev, TurnEvent::Finished { .. }) {
                        st.running
                            .completion
                            .remember(st.app.store(), st.answer.message())
                            .await;
                        st.events.finish(&st.answer, &mut st.pending);
                        if let Some((id, transcript)) = st.events.keep(&st.answer) {
                            st.running
                                .completion
                                .remember_response(st.app.store(), &response_key(&id), transcript)
                                .await;
                        }
                        st.done = true;
                    } else {
                        st.events.push_event(&ev, &st.answer, &mut st.pending);
                    }
                }
                Some(Err(e)) => {
                    st.events.fail(e, &st.answer, &mut st.pending);
                    st.done = true;
                }
                None => {
                    let e = UpstreamError::StreamClosed(
                        "the stream ended before the turn finished".into(),
                    );
                    st.events.fail(e, &st.answer, &mut st.pending);
                    st.done = true;
                }
            }
        }
    })
}

/// The store key of a kept response.
pub fn response_key(id: &str) -> String {
    format!("response:{id}")
}
