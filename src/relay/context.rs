//! Context turns: the start of a transcript over the prompt budget, sent as numbered turns into
//! the same upstream chat before the real one (see [`crate::conversation::prompt`]).
//!
//! Each part is a full upstream turn: the agent answers (asked to say only `OK`), the answer is
//! read to its end and dropped, then the next part continues the same history. Each costs the
//! account credits, which is why they are counted (`el2a_context_turns_total`) and capped
//! (`MAX_CONTEXT_TURNS`).

use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use crate::upstream::{Account, EngineClient, TurnEvent, TurnRequest, UpstreamError};

/// Context turns sent since the process started (the admin overview shows it).
static SENT: AtomicU64 = AtomicU64::new(0);

/// Context turns sent since the process started.
pub fn sent_total() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// Sends `parts` as context turns and returns `req` set to continue their history; `req`
/// unchanged when there are none.
pub async fn send(
    engine: &EngineClient,
    account: &Arc<Account>,
    parts: &[String],
    mut req: TurnRequest,
) -> Result<TurnRequest, UpstreamError> {
    for (i, part) in parts.iter().enumerate() {
        let ctx = TurnRequest {
            model: req.model.clone(),
            prompt: part.clone(),
            continue_history: req.continue_history.clone(),
            images: Vec::new(),
        };
        let mut turn = engine.start_turn(account, ctx).await?;
        loop {
            match turn.next().await {
                Some(Ok(TurnEvent::Finished { .. })) => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(UpstreamError::StreamClosed(
                        "the stream of a context turn ended before the turn finished".into(),
                    ));
                }
            }
        }
        metrics::counter!(crate::metrics::CONTEXT_TURNS).increment(1);
        SENT.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            part = i + 1,
            of = parts.len(),
            bytes = part.len(),
            "context turn sent"
        );
        req.continue_history = Some(turn.history.clone());
    }
    Ok(req)
}
