//! The loop shared by every streamed answer (OpenAI chunks, Anthropic and Responses events):
//! pull upstream events, let the API's [`ApiEvents`] turn each into SSE events, remember the
//! conversation when the turn finished, and end every stream properly, with an error event on
//! failure.
//!
//! The stream owns the upstream [`Running`](crate::relay::Running) turn: when the client
//! disconnects, axum drops the stream, which drops the turn, which closes the upstream WebSocket.
//!
//! The store write of a finished turn is off the answer's path: its closing events go out
//! first. The write is started (polled once) before they are sent, so a follow-up the client
//! sends as soon as it reads them finds the conversation (the embedded store's queued writes are
//! read back at once; Redis takes the write first on its connection); then it runs in a task of
//! its own, which a client that hangs up at `[DONE]` cannot cancel; the body ends when it is
//! done, so a client that reads to the end knows its turn is kept.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::Poll;

use axum::response::sse::Event;
use futures_util::Stream;

use super::answer::Answer;
use super::turn::Started;
use crate::relay::Save;
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
    /// The store write of the finished turn, awaited before the body ends.
    saving: Option<tokio::task::JoinHandle<()>>,
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
        saving: None,
    };
    futures_util::stream::unfold((st, Some(first)), |(mut st, mut first)| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok(ev), (st, first)));
            }
            if st.done {
                if let Some(saving) = st.saving.take() {
                    // A panic in the write was already reported by the task; nothing to add.
                    let _ = saving.await;
                }
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
                        st.saving = match writes_of(&st) {
                            Some(writes) => start(writes).await,
                            None => None,
                        };
                        st.events.finish(&st.answer, &mut st.pending);
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

/// The store writes of a finished turn, owning what they write (`None`: nothing to keep).
fn writes_of<S: ApiEvents>(st: &Pump<S>) -> Option<Writes> {
    let completion = &st.running.completion;
    let saves: Vec<Save> =
        completion
            .conversation_save(st.answer.message())
            .into_iter()
            .chain(st.events.keep(&st.answer).and_then(|(id, transcript)| {
                completion.response_save(&response_key(&id), transcript)
            }))
            .collect();
    if saves.is_empty() {
        return None;
    }
    let store = Arc::clone(&st.app.relay().store);
    Some(Box::pin(async move {
        for save in saves {
            save.run(store.as_ref()).await;
        }
    }))
}

type Writes = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Polls the writes once here (so each is queued or sent before the closing events go out),
/// then hands what is left to a task of its own.
async fn start(mut writes: Writes) -> Option<tokio::task::JoinHandle<()>> {
    let first = std::future::poll_fn(|cx| Poll::Ready(writes.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(()) => None,
        Poll::Pending => Some(tokio::spawn(writes)),
    }
}

/// The store key of a kept response.
pub fn response_key(id: &str) -> String {
    format!("response:{id}")
}
