//! Forgetting old conversations: a purge round, which the server runs in the background
//! (`server/state.rs`), drops expired mappings from the store
//! and, with `UPSTREAM_CLEANUP=true`, deletes their chat histories upstream so the user's
//! cto.new workspace does not fill up with proxy chats.
//!
//! Expiry itself does not depend on this task (an expired mapping is never continued); the task
//! only frees space and runs the optional upstream deletion.

use std::time::Duration;

use crate::relay::Relay;

/// How often to purge: a quarter of the TTL, between one second and ten minutes.
pub fn interval_for(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// One purge round over the relay's store; with `delete_upstream` (`UPSTREAM_CLEANUP`) the
/// expired chats are deleted upstream too. Returns how many upstream histories were deleted.
/// The server runs it every [`interval_for`] the TTL.
pub async fn purge_once(relay: &Relay, delete_upstream: bool) -> usize {
    let expired = match relay.store.purge_expired().await {
        Ok(list) => list,
        Err(e) => {
            metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
            tracing::warn!(error = %e, "could not purge expired conversations");
            return 0;
        }
    };
    if expired.is_empty() || !delete_upstream {
        if !expired.is_empty() {
            tracing::debug!(count = expired.len(), "forgot expired conversations");
        }
        return 0;
    }
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
