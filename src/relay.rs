//! The core of a chat request, shared by every API surface: find or start the upstream
//! history, run the turn, and remember the history once the turn completed.

use std::sync::Arc;
use std::time::Instant;

use crate::conversation::message::split_point;
use crate::conversation::{Fingerprint, Message, Role, Scope, prompt};
use crate::pool::{Lease, Pool, PoolError, Verdict, Want, account_id_for_user};
use crate::store::{ConversationRecord, Store, now_ms};
use crate::upstream::images::ImageData;
use crate::upstream::{Account, EngineClient, HistoryRef, Turn, TurnRequest, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// No account is configured at all (what [`PoolError::NoAccount`] becomes here, so every
    /// surface matches one variant for it).
    #[error("{}", PoolError::NoAccount)]
    NoAccount,
    /// No account could take the request (none configured, all dead, all cooling, queue full).
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Runs turns for all API surfaces.
pub struct Relay {
    pub engine: Arc<EngineClient>,
    pub store: Arc<dyn Store>,
    pub pool: Arc<Pool>,
}

/// A turn in flight plus what is needed to remember it when it completes.
pub struct Running {
    pub turn: Turn,
    pub continued: bool,
    pub completion: Completion,
    _active: ActiveGuard,
    /// The account slot, held until the turn is over (dropped with `Running`).
    _lease: Lease,
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

/// A conversation found in the store and the pool key of the account that owns it.
struct Owned {
    record: ConversationRecord,
    /// The pool key of the owner.
    key: u64,
    /// Where the record was stored (to put it back if the turn never starts).
    fingerprint: String,
}

/// Most failovers of one request to other accounts (each marks an account dead or cooling).
const MAX_FAILOVERS: u32 = 16;

impl Relay {
    /// The pool key of the account with this id. Identities are discovered lazily, so after a
    /// restart an account may not know its user id yet: discover them before giving up.
    async fn owner_key(&self, account_id: &str) -> Option<u64> {
        if let Some(key) = self.pool.key_of(account_id) {
            return Some(key);
        }
        for account in self.pool.undiscovered() {
            if let Err(e) = self.engine.ensure_ready(&account).await {
                tracing::debug!(error = %e, "account not ready while looking up a conversation owner");
            }
        }
        self.pool.key_of(account_id)
    }

    /// The account with this id, if still in the pool (e.g. to delete its expired histories).
    pub async fn owner_of(&self, account_id: &str) -> Option<Arc<Account>> {
        let key = self.owner_key(account_id).await?;
        self.pool.account_of(key)
    }

    /// The stored conversation that `messages` continue, if any, with its owner.
    async fn find_continued(
        &self,
        scope: &Scope,
        messages: &[Message],
        split: usize,
    ) -> Option<Owned> {
        if split == 0 || split >= messages.len() {
            return None;
        }
        let key = Fingerprint::of(scope, &messages[..split]);
        match self.store.take_conversation(key.as_str()).await {
            Ok(Some(record)) => match self.owner_key(&record.account_id).await {
                Some(owner) => Some(Owned {
                    record,
                    key: owner,
                    fingerprint: key.as_str().to_string(),
                }),
                None => {
                    tracing::info!(
                        "the account of this conversation is gone; starting a new history"
                    );
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
                tracing::warn!(error = %e, "conversation store unavailable; starting a new history");
                None
            }
        }
    }

    /// Starts the turn for `messages` (already validated: non-empty).
    ///
    /// Failures before the first event are handled here, never later: a dead or cooling
    /// account hands the request to another one (a continued conversation then restarts with
    /// the whole transcript), transient failures are retried with backoff within the deadline,
    /// and failures that cannot succeed anywhere are answered at once.
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
        let mut continued = self.find_continued(&scope, &messages, split).await;
        let result = self
            .attempts(scope, messages, images, split, &mut continued)
            .await;
        if result.is_err()
            && let Some(c) = continued
        {
            // The turn never started, so the history is as it was: the client's retry should
            // still find it (it was taken from the store above).
            if let Err(e) = self.store.put_conversation(&c.fingerprint, &c.record).await {
                metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
                tracing::warn!(error = %e, "could not put the conversation back");
            }
        }
        result
    }

    /// The attempts of [`Relay::start`]; `continued` becomes `None` when the conversation
    /// had to restart on another account.
    async fn attempts(
        &self,
        scope: Scope,
        messages: Vec<Message>,
        images: Vec<ImageData>,
        split: usize,
        continued: &mut Option<Owned>,
    ) -> Result<Running, RelayError> {
        let started = Instant::now();
        let (mut transient, mut failovers) = (0u32, 0u32);
        loop {
            let (owner, req, turns_before) = match continued.as_ref() {
                Some(c) => (
                    Some(c.key),
                    TurnRequest {
                        model: scope.model.clone(),
                        prompt: prompt::new_turn(&messages[split..]),
                        continue_history: Some(c.record.history.clone()),
                        images: images.clone(),
                    },
                    c.record.turns,
                ),
                None => (
                    None,
                    TurnRequest {
                        model: scope.model.clone(),
                        prompt: prompt::full_transcript(&messages),
                        continue_history: None,
                        images: images.clone(),
                    },
                    0,
                ),
            };
            let want = Want {
                owner,
                model: &scope.model,
                last_resort: failovers == 0,
            };
            let mut lease = match self.pool.acquire(want).await {
                Ok(lease) => lease,
                Err(PoolError::OwnerUnavailable) => {
                    tracing::info!(
                        "the account of this conversation cannot serve; restarting it on another"
                    );
                    *continued = None;
                    continue;
                }
                Err(PoolError::NoAccount) => return Err(RelayError::NoAccount),
                Err(e) => return Err(e.into()),
            };
            let is_continued = req.continue_history.is_some();
            tracing::debug!(continued = is_continued, prompt_chars = req.prompt.len(), account = %lease.account.label(), "starting upstream turn");
            let setup = Instant::now();
            let err = match self.engine.start_turn(&lease.account, req).await {
                Ok(turn) => {
                    self.pool.record_success(&mut lease, &scope.model);
                    metrics::histogram!(crate::metrics::UPSTREAM_SETUP_SECONDS, "generation" => turn.history.generation.as_str())
                        .record(setup.elapsed().as_secs_f64());
                    metrics::counter!(crate::metrics::TURNS, "kind" => if is_continued { "continued" } else { "new" }).increment(1);
                    let history = turn.history.clone();
                    let account = Arc::clone(&lease.account);
                    return Ok(Running {
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
                        _lease: lease,
                    });
                }
                Err(e) => e,
            };
            crate::metrics::upstream_error(err.kind());
            let verdict = self.pool.record_failure(&mut lease, &err);
            let label = lease.account.label().to_string();
            drop(lease);
            let out_of_time = started.elapsed() >= self.pool.cfg.deadline;
            match verdict {
                Verdict::Fatal => return Err(err.into()),
                Verdict::Dead | Verdict::Cool(_) => {
                    failovers += 1;
                    if failovers > MAX_FAILOVERS || out_of_time {
                        return Err(err.into());
                    }
                    tracing::warn!(account = %label, error = %err, "account failed; trying another");
                    // Its history lives on that account: restart with the whole transcript.
                    *continued = None;
                }
                Verdict::Transient => {
                    transient += 1;
                    let delay = self.pool.cfg.backoff.delay(transient - 1);
                    if transient >= self.pool.cfg.attempts
                        || started.elapsed() + delay >= self.pool.cfg.deadline
                    {
                        return Err(err.into());
                    }
                    tracing::info!(account = %label, error = %err, retry_in_ms = delay.as_millis() as u64, "turn did not start; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

impl Completion {
    /// Records that the turn completed with this visible answer, so the next request that
    /// echoes it continues the same upstream history.
    pub async fn remember(&self, store: &dyn Store, answer: &str) {
        let c = self;
        let Some(account_id) = c
            .account
            .identity()
            .map(|i| account_id_for_user(&i.user_id))
        else {
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
