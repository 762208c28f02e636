//! The core of a chat request, shared by every API surface: find or start the upstream
//! history, run the turn, and remember the history once the turn completed.
//!
//! # Layout
//! - [`chat`]: [`Chat`], the request in the internal model;
//! - [`attempts`]: [`Relay::start`]: continuity, the door of the picked account, failover;
//! - [`cli_body`]: the CLI door's request body (the client's own, or written from the model);
//! - [`context`]: context turns, for transcripts over the upstream's prompt budget;
//! - [`emulate`]: tool calls on the web door (parse the answer, one repair turn);
//! - this file: the relay's settings, [`Running`] and [`Completion`].

pub mod attempts;
pub mod chat;
pub mod cli_body;
pub mod context;
pub mod emulate;

use std::sync::Arc;

pub use attempts::Route;
pub use chat::Chat;

use crate::conversation::prompt::Plan;
use crate::conversation::{Fingerprint, Message, Scope, fingerprint};
use crate::pool::{Lease, Pool, PoolError};
use crate::store::{ConversationRecord, Store, now_ms};
use crate::upstream::cli::CliClient;
use crate::upstream::{Account, EngineClient, HistoryRef, Turn, TurnEvent, UpstreamError};

/// What to do with a transcript over the prompt budget (`LONG_PROMPTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongPrompts {
    /// Send the start as numbered context turns in the same upstream chat (each costs credits).
    ContextTurns,
    /// Refuse with a 413 that explains the limit.
    Reject,
}

/// How prompts are sized for the web door.
#[derive(Debug, Clone, Copy)]
pub struct PromptSettings {
    /// Most bytes of one upstream prompt (`PROMPT_BUDGET_BYTES`).
    pub budget: usize,
    pub long_prompts: LongPrompts,
    /// Most context turns one request may cost (`MAX_CONTEXT_TURNS`).
    pub max_context_turns: usize,
}

impl Default for PromptSettings {
    fn default() -> Self {
        PromptSettings {
            budget: 18_000,
            long_prompts: LongPrompts::ContextTurns,
            max_context_turns: 8,
        }
    }
}

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
    /// The transcript is over the prompt budget and may not be split (or needs too many parts).
    #[error(
        "The conversation is {bytes} bytes as a prompt; cto.new's web agent takes about {budget} bytes per turn. {hint}"
    )]
    PromptTooLong {
        bytes: usize,
        budget: usize,
        hint: &'static str,
    },
}

/// Runs turns for all API surfaces.
pub struct Relay {
    pub engine: Arc<EngineClient>,
    /// The CLI door's client (`cto login` accounts).
    pub cli: Arc<CliClient>,
    pub store: Arc<dyn Store>,
    pub pool: Arc<Pool>,
    pub prompts: PromptSettings,
}

/// A turn in flight plus what is needed to remember it when it completes.
pub struct Running {
    pub turn: Turn,
    pub continued: bool,
    pub completion: Completion,
    /// Tool-call emulation over the web door's text, when the client offered tools.
    emulation: Option<emulate::Emulation>,
    /// For the repair turn of the emulation: the client that runs it.
    engine: Arc<EngineClient>,
    _active: ActiveGuard,
    /// The account slot, held until the turn is over (dropped with `Running`).
    _lease: Lease,
}

impl Running {
    /// The next event of the answer, in the internal model; `None` after `Finished` or an error.
    pub async fn next(&mut self) -> Option<Result<TurnEvent, UpstreamError>> {
        match (self.emulation.as_mut(), self._lease.login.web()) {
            (Some(em), Some(account)) => {
                em.next(&mut self.turn, &self.engine, &self.completion, account)
                    .await
            }
            _ => self.turn.next().await,
        }
    }
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
    /// The request's messages hashed (not kept: a long conversation would stay in memory for
    /// the whole turn); the answer completes the fingerprint.
    prefix: fingerprint::Partial,
    /// The stable id of the account that ran it (`None`: a cookie account not discovered).
    account_id: Option<String>,
    /// Whether the conversation is remembered by fingerprint (the web door; the CLI door's
    /// clients send the whole history, so nothing is stored per request).
    fingerprints: bool,
    /// Upstream turns of the history before the answer's own turns.
    turns_before: u32,
    /// Upstream turns this answer took besides its own (context parts, a repair turn).
    extra_turns: std::sync::atomic::AtomicU32,
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
}

impl Relay {
    /// Refuses a plan the settings do not allow, with a message that says what to change.
    fn check_plan(&self, plan: &Plan) -> Result<(), RelayError> {
        let parts = plan.context.len();
        if parts == 0 {
            return Ok(());
        }
        let (bytes, budget) = (plan.total_bytes(), self.prompts.budget);
        if self.prompts.long_prompts == LongPrompts::Reject {
            return Err(RelayError::PromptTooLong {
                bytes,
                budget,
                hint: "Shorten the conversation, or set LONG_PROMPTS=context-turns to send its start as context turns (each costs credits).",
            });
        }
        if parts > self.prompts.max_context_turns {
            return Err(RelayError::PromptTooLong {
                bytes,
                budget,
                hint: "Sending it would take more context turns than MAX_CONTEXT_TURNS allows: shorten the conversation or raise MAX_CONTEXT_TURNS (each context turn costs credits).",
            });
        }
        Ok(())
    }
}

impl Completion {
    /// Counts an upstream turn this answer took besides its own (a repair turn).
    pub(crate) fn add_extra_turn(&self) {
        self.extra_turns
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The upstream history the answer runs in.
    pub(crate) fn history(&self) -> &HistoryRef {
        &self.history
    }

    /// The model of the answer.
    pub(crate) fn model(&self) -> &str {
        &self.scope.model
    }

    /// Records that the turn completed with this answer (text and tool calls), so the next
    /// request that echoes it continues the same upstream history.
    pub async fn remember(&self, store: &dyn Store, answer: Message) {
        if let Some(save) = self.conversation_save(answer) {
            save.run(store).await;
        }
    }

    /// Stores a Responses API answer under `key` with its whole conversation, for a later
    /// `previous_response_id`.
    pub async fn remember_response(&self, store: &dyn Store, key: &str, transcript: String) {
        if let Some(save) = self.response_save(key, transcript) {
            save.run(store).await;
        }
    }

    /// The store write that [`Completion::remember`] makes, built at once so that it borrows
    /// nothing of the turn (a streamed answer runs it after its last event; see
    /// `server::pump`). `None` when nothing is remembered (the CLI door, an undiscovered
    /// account).
    pub fn conversation_save(&self, answer: Message) -> Option<Save> {
        let c = self;
        let account_id = c.account_id.clone().filter(|_| c.fingerprints)?;
        let key = c.prefix.then(std::slice::from_ref(&answer));
        let extra = c.extra_turns.load(std::sync::atomic::Ordering::Relaxed);
        let record = ConversationRecord {
            account_id,
            history: c.history.clone(),
            turns: c.turns_before + 1 + extra,
            model: c.scope.model.clone(),
            last_used_ms: now_ms(),
            transcript: None,
        };
        Some(Save {
            key: key.as_str().to_string(),
            record,
            failed: "could not remember the conversation; its next turn will start a new history",
        })
    }

    /// The store write of [`Completion::remember_response`].
    pub fn response_save(&self, key: &str, transcript: String) -> Option<Save> {
        let record = ConversationRecord {
            account_id: self.account_id.clone()?,
            history: self.history.clone(),
            turns: self.turns_before + 1,
            model: self.scope.model.clone(),
            last_used_ms: now_ms(),
            transcript: Some(transcript),
        };
        Some(Save {
            key: key.to_string(),
            record,
            failed: "could not store the response for previous_response_id",
        })
    }
}

/// One store write of a finished turn, owning everything it writes.
pub struct Save {
    key: String,
    record: ConversationRecord,
    /// What the warning says when the write fails.
    failed: &'static str,
}

impl Save {
    /// Writes it; a failure is counted and logged, never the client's error (the answer was
    /// delivered; only the next turn's continuity is lost, and the log says so).
    pub async fn run(self, store: &dyn Store) {
        if let Err(e) = store.put_conversation(&self.key, &self.record).await {
            metrics::counter!(crate::metrics::STORE_ERRORS).increment(1);
            tracing::warn!(error = %e, "{}", self.failed);
        }
    }
}
