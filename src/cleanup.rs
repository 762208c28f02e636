//! Forgetting old conversations: a background task purges expired mappings from the store
//! and, with `UPSTREAM_CLEANUP=true`, deletes their chat histories upstream so the user's
//! cto.new workspace does not fill up with proxy chats.
//!
//! Expiry itself does not depend on this task (an expired mapping is never continued); the task
//! only frees space and runs the optional upstream deletion.

use std::time::Duration;

use crate::server::AppState;

/// How often to purge: a quarter of the TTL, between one second and ten minutes.
pub fn interval_for(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// Starts the purge loop; it stops when the application state is dropped.
pub fn spawn(state: &AppState) {
    let every = interval_for(state.config().conversation_ttl);
    let weak = state.downgrade();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            purge_once(&state).await;
        }
    });
}

/// One purge round; returns how many upstream histories were deleted.
pub async fn purge_once(state: &AppState) -> usize {
    let expired = match state.store().purge_expired().await {
        Ok(list) => list,
        Err(e) => {
            metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
            tracing::warn!(error = %e, "could not purge expired conversations");
            return 0;
        }
    };
    if expired.is_empty() || !state.config().upstream_cleanup {
        if !expired.is_empty() {
            tracing::debug!(count = expired.len(), "forgot expired conversations");
        }
        return 0;
    }
    let relay = state.relay();
    let mut deleted = 0;
    for rec in expired {
        let Some(account) = relay.owner_of(&rec.account_id).await else {
            continue;
        };
        match relay.engine.delete_history(&account, &rec.history).await {
            Ok(()) => deleted += 1,
            Err(e) => {
                tracing::warn!(error = %e, "could not delete an expired chat history upstream")
            }
        }
    }
    tracing::info!(deleted, "deleted expired chat histories upstream");
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_bounded() {
        assert_eq!(interval_for(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(
            interval_for(Duration::from_secs(60)),
            Duration::from_secs(15)
        );
        assert_eq!(
            interval_for(Duration::from_secs(7 * 86_400)),
            Duration::from_secs(600)
        );
    }
}
