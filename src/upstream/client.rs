//! TODO(upstream helper): runs one turn end to end.

use std::sync::Arc;

use super::{Account, Generation, Turn, TurnRequest, UpstreamConfig, UpstreamError};

/// The cto.new client shared by all requests (one HTTP connection pool).
pub struct EngineClient {
    cfg: Arc<UpstreamConfig>,
}

impl EngineClient {
    pub fn new(cfg: UpstreamConfig) -> Result<Self, UpstreamError> {
        Ok(EngineClient { cfg: Arc::new(cfg) })
    }
    pub fn config(&self) -> &UpstreamConfig {
        &self.cfg
    }
    /// The generation `auto` settled on, if it has settled.
    pub fn generation(&self) -> Option<Generation> {
        todo!()
    }
    /// Discovers the account's session (if not yet known) and mints/reuses a JWT.
    pub async fn ensure_ready(&self, account: &Account) -> Result<super::Identity, UpstreamError> {
        let _ = account;
        todo!()
    }
    /// Starts one turn: resolves the model, makes the trigger calls, opens the WebSocket in the
    /// order the generation needs, and returns a [`Turn`] that yields the answer.
    pub async fn start_turn(
        &self,
        account: &Arc<Account>,
        req: TurnRequest,
    ) -> Result<Turn, UpstreamError> {
        let _ = (account, req);
        todo!()
    }
}
