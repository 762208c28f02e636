//! The core of a chat request, shared by every API surface: find or start the upstream
//! history, run the turn, and remember the history once the turn completed.

use std::sync::Arc;

use crate::accounts::{Accounts, account_id_of};
use crate::conversation::message::split_point;
use crate::conversation::{Fingerprint, Message, Role, Scope, prompt};
use crate::store::{ConversationRecord, Store, now_ms};
use crate::upstream::images::ImageData;
use crate::upstream::{Account, EngineClient, HistoryRef, Turn, TurnRequest, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(
        "no cto.new account is configured: set CLERK_COOKIE to the cookie of a logged-in cto.new browser session (or run `enginelabs-2api demo` to try the simulator)"
    )]
    NoAccount,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Runs turns for all API surfaces.
pub struct Relay {
    pub engine: EngineClient,
    pub store: Arc<dyn Store>,
    pub accounts: Accounts,
}

/// A turn in flight plus what is needed to remember it when it completes.
pub struct Running {
    pub turn: Turn,
    pub continued: bool,
    pub completion: Completion,
    _active: ActiveGuard,
}

/// Keeps the in-flight gauge right however a turn ends (finished, failed, abandoned).
struct ActiveGuard;

impl ActiveGuard {
    fn new() -> Self {
        metrics::gauge!(crate::metrics::ACTIVE_STREAMS).increment(1.0);
        ActiveGuard
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::ACTIVE_STREAMS).decrement(1.0);
    }
}

/// What is needed to remember a turn once it completed.
pub struct Completion {
    history: HistoryRef,
    scope: Scope,
    messages: Vec<Message>,
    account: Arc<Account>,
    turns_before: u32,
}

impl Relay {
    /// The configured account with this id. Identities are discovered lazily, so after a
    /// restart an account may not know its user id yet: discover it before comparing.
    pub async fn owner_of(&self, account_id: &str) -> Option<Arc<Account>> {
        for slot in self.accounts.all() {
            if slot.account.identity().is_none()
                && let Err(e) = self.engine.ensure_ready(&slot.account).await
            {
                tracing::debug!(error = %e, "account not ready while looking up a conversation owner");
            }
        }
        self.accounts.by_id(account_id)
    }

    /// Starts the turn for `messages` (already validated: non-empty).
    pub async fn start(&self, scope: Scope, messages: Vec<Message>) -> Result<Running, RelayError> {
        self.start_with_images(scope, messages, Vec::new()).await
    }

    /// [`Relay::start`] with the new turn's images (checked and loaded by the caller).
    pub async fn start_with_images(
        &self,
        scope: Scope,
        messages: Vec<Message>,
        images: Vec<ImageData>,
    ) -> Result<Running, RelayError> {
        let split = split_point(&messages);
        let mut continued = None;
        if split > 0 && split < messages.len() {
            let key = Fingerprint::of(&scope, &messages[..split]);
            match self.store.take_conversation(key.as_str()).await {
                Ok(Some(rec)) => match self.owner_of(&rec.account_id).await {
                    Some(account) => continued = Some((rec, account)),
                    None => tracing::info!(
                        "the account of this conversation is gone; starting a new history"
                    ),
                },
                Ok(None) => {}
                Err(e) => {
                    metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
                    tracing::warn!(error = %e, "conversation store unavailable; starting a new history")
                }
            }
        }
        let (account, req, turns_before) = match continued {
            Some((rec, account)) => {
                let req = TurnRequest {
                    model: scope.model.clone(),
                    prompt: prompt::new_turn(&messages[split..]),
                    continue_history: Some(rec.history),
                    images,
                };
                (account, req, rec.turns)
            }
            None => {
                let account = self.accounts.pick().ok_or(RelayError::NoAccount)?;
                let req = TurnRequest {
                    model: scope.model.clone(),
                    prompt: prompt::full_transcript(&messages),
                    continue_history: None,
                    images,
                };
                (account, req, 0)
            }
        };
        let is_continued = req.continue_history.is_some();
        tracing::debug!(
            continued = is_continued,
            prompt_chars = req.prompt.len(),
            "starting upstream turn"
        );
        let setup = std::time::Instant::now();
        let turn = match self.engine.start_turn(&account, req).await {
            Ok(turn) => turn,
            Err(e) => {
                crate::metrics::upstream_error(e.kind());
                return Err(e.into());
            }
        };
        metrics::histogram!(crate::metrics::UPSTREAM_SETUP_SECONDS, "generation" => turn.history.generation.as_str())
            .record(setup.elapsed().as_secs_f64());
        metrics::counter!(crate::metrics::TURNS, "kind" => if is_continued { "continued" } else { "new" }).increment(1);
        let history = turn.history.clone();
        Ok(Running {
            turn,
            continued: is_continued,
            completion: Completion {
                history,
                scope,
                messages,
                account,
                turns_before,
            },
            _active: ActiveGuard::new(),
        })
    }
}

impl Completion {
    /// Records that the turn completed with this visible answer, so the next request that
    /// echoes it continues the same upstream history.
    pub async fn remember(&self, store: &dyn Store, answer: &str) {
        let c = self;
        let Some(account_id) = account_id_of(&c.account) else {
            return;
        };
        let mut messages = c.messages.clone();
        messages.push(Message::new(Role::Assistant, answer));
        let key = Fingerprint::of(&c.scope, &messages);
        let record = ConversationRecord {
            account_id,
            history: c.history.clone(),
            turns: c.turns_before + 1,
            model: c.scope.model.clone(),
            last_used_ms: now_ms(),
        };
        if let Err(e) = store.put_conversation(key.as_str(), &record).await {
            metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
            tracing::warn!(error = %e, "could not remember the conversation; its next turn will start a new history");
        }
    }
}
