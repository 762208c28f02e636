//! The path every client API shares before and after its own wire format: start the turn
//! through the relay, wait for the first event (so that a turn failing before it says anything
//! gets a real HTTP error instead of a 200 stream that breaks at once), record the time to it,
//! and, for non-streamed answers, read the whole answer.

use std::time::Instant;

use super::AppState;
use super::answer::Answer;
use super::error::ApiError;
use crate::conversation::Scope;
use crate::relay::{Chat, Completion, Route, Running};
use crate::upstream::{TurnEvent, UpstreamError};

/// A turn whose first event has arrived.
pub struct Started {
    pub running: Running,
    pub first: TurnEvent,
}

/// Loads the new turn's images, starts the turn and waits for its first event; records the
/// time from `received` to it for `/metrics` and the admin overview.
pub async fn start(
    state: &AppState,
    scope: Scope,
    mut chat: Chat,
    route: &Route,
    received: Instant,
    stream: bool,
) -> Result<Started, ApiError> {
    let sources = std::mem::take(&mut chat.images);
    let images =
        crate::catalog::prepare_images(state.catalog(), state.relay(), &scope.model, sources)
            .await?;
    let mut running = state.relay().start(scope, chat, images, route).await?;
    let first = match running.next().await {
        Some(Ok(ev)) => ev,
        Some(Err(e)) => return Err(counted(e)),
        None => {
            let e = UpstreamError::StreamClosed("the stream ended before any answer".into());
            return Err(counted(e));
        }
    };
    let elapsed = received.elapsed();
    metrics::histogram!(crate::metrics::TTFB_SECONDS, "stream" => if stream { "true" } else { "false" })
        .record(elapsed.as_secs_f64());
    crate::server::traffic::ttfb(elapsed);
    Ok(Started { running, first })
}

/// Reads the turn to its end and remembers the conversation; the completion stays with the
/// caller for what else it keeps (a Responses API response).
pub async fn collect(state: &AppState, started: Started) -> Result<(Answer, Completion), ApiError> {
    let Started { mut running, first } = started;
    let mut answer = Answer::default();
    let mut ev = first;
    loop {
        answer.push(&ev);
        if matches!(ev, TurnEvent::Finished { .. }) {
            break;
        }
        ev = match running.next().await {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => return Err(counted(e)),
            None => {
                return Err(counted(UpstreamError::StreamClosed(
                    "the stream ended before the turn finished".into(),
                )));
            }
        };
    }
    running
        .completion
        .remember(state.store(), answer.message())
        .await;
    Ok((answer, running.completion))
}

/// Counts an upstream failure and turns it into the HTTP error.
pub fn counted(e: UpstreamError) -> ApiError {
    crate::metrics::upstream_error(e.kind().as_str());
    e.into()
}
