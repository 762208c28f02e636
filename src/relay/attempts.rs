//! [`Relay::start`]: find the conversation's upstream history, pick an account, start the turn
//! through the account's door, and handle every failure before the first event.
//!
//! Failures are handled here, never later: a dead or cooling account hands the request to
//! another one (a continued conversation then restarts with the whole transcript), transient
//! failures are retried with backoff within the deadline, and failures that cannot succeed
//! anywhere are answered at once.
//!
//! The door follows the account the pool picks: a cookie account runs the web agent (prompt
//! plan, context turns, tool emulation), a `cto login` account the CLI API (the client's own
//! request, native tools, no conversation memory: the client sends the whole history).

use std::sync::Arc;
use std::time::Instant;

use super::{
    ActiveGuard, Chat, Completion, MAX_FAILOVERS, Owned, Relay, RelayError, Running, cli_body,
    context, emulate,
};
use crate::conversation::message::split_point;
use crate::conversation::prompt::{self, Plan};
use crate::conversation::{Fingerprint, Message, Role, Scope};
use crate::pool::{Doors, Kind, Lease, Login, PoolError, Verdict, Want, account_id_for_user};
use crate::tools::ToolSet;
use crate::upstream::cli::{CliAccount, session_id};
use crate::upstream::images::ImageData;
use crate::upstream::{Account, Turn, TurnRequest, UpstreamError};

/// Which doors serve the request's model, and under which name on the CLI door.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Cookie accounts serve it (the web agent, by the catalogue name in the scope).
    pub web: bool,
    /// The CLI API serves it, under this model id.
    pub cli_model: Option<String>,
}

/// A turn that started, with what its memory needs.
struct Begun {
    turn: Turn,
    continued: bool,
    turns_before: u32,
    extra_turns: u32,
}

/// What one request carries through its attempts.
struct Request<'a> {
    scope: Scope,
    chat: Chat,
    tools: Option<Arc<ToolSet>>,
    images: Vec<ImageData>,
    split: usize,
    route: &'a Route,
}

impl Relay {
    /// Starts the turn for `chat` (already validated: non-empty); `images` are the new turn's
    /// images, checked and loaded by the caller from `chat.images`.
    pub async fn start(
        &self,
        mut scope: Scope,
        chat: Chat,
        images: Vec<ImageData>,
        route: &Route,
    ) -> Result<Running, RelayError> {
        let tools = chat.offered_tools().cloned();
        scope.tools = tools.as_ref().map(|t| t.digest());
        tracing::debug!(
            messages = chat.messages.len(),
            text_bytes = chat.messages.iter().map(|m| m.text.len()).sum::<usize>(),
            tools = tools.as_ref().map_or(0, |t| t.specs().len()),
            "chat request"
        );
        let doors = Doors {
            web: route.web,
            cli: route.cli_model.is_some(),
            // Native tool calls beat emulated ones.
            prefer: tools.is_some().then_some(Kind::Cli),
        };
        let split = split_point(&chat.messages);
        let mut continued = if doors.web {
            self.find_continued(&scope, &chat.messages, split).await
        } else {
            None
        };
        let mut req = Request {
            scope,
            chat,
            tools,
            images,
            split,
            route,
        };
        let result = self.attempts(&mut req, doors, &mut continued).await;
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
        req: &mut Request<'_>,
        doors: Doors,
        continued: &mut Option<Owned>,
    ) -> Result<Running, RelayError> {
        let started = Instant::now();
        let (mut transient, mut failovers) = (0u32, 0u32);
        loop {
            let want = Want {
                owner: continued.as_ref().map(|c| c.key),
                model: &req.scope.model,
                doors,
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
            let setup = Instant::now();
            let attempt = match lease.login.clone() {
                Login::Web(account) => self.start_web(req, continued.as_ref(), &account).await?,
                Login::Cli(account) => self.start_cli(req, &account).await,
            };
            let err = match attempt {
                Ok(begun) => {
                    self.pool.record_success(&mut lease, &req.scope.model);
                    let door = match lease.login.kind() {
                        Kind::Web => begun.turn.history.generation.as_str(),
                        Kind::Cli => "cli",
                    };
                    metrics::histogram!(crate::metrics::UPSTREAM_SETUP_SECONDS, "generation" => door)
                        .record(setup.elapsed().as_secs_f64());
                    metrics::counter!(crate::metrics::TURNS, "kind" => if begun.continued { "continued" } else { "new" }).increment(1);
                    return Ok(self.running(req, begun, lease));
                }
                Err(e) => e,
            };
            crate::metrics::upstream_error(err.kind().as_str());
            let verdict = self.pool.record_failure(&mut lease, &err);
            let label = lease.login.label().to_string();
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

    /// The web agent: the prompt plan (continued or new history), context turns, the trigger.
    /// The outer error refuses the request (a plan the settings forbid); the inner one is the
    /// upstream's, for the failure policy.
    async fn start_web(
        &self,
        req: &Request<'_>,
        continued: Option<&Owned>,
        account: &Arc<Account>,
    ) -> Result<Result<Begun, UpstreamError>, RelayError> {
        let budget = self.prompts.budget;
        let messages = &req.chat.messages;
        let tools = req.tools.as_deref();
        let (plan, history, turns_before) = match continued {
            Some(c) => (
                prompt::for_continued(&messages[req.split..], tools, budget),
                Some(c.record.history.clone()),
                c.record.turns,
            ),
            None => (prompt::for_new_history(messages, tools, budget), None, 0),
        };
        self.check_plan(&plan)?;
        if !plan.context.is_empty() {
            tracing::info!(
                context_turns = plan.context.len(),
                total_bytes = plan.total_bytes(),
                prompt_bytes = plan.prompt.len(),
                "the transcript is over the prompt budget: its start goes as context turns (each costs credits)"
            );
        }
        let Plan { context, prompt } = plan;
        let turn_req = TurnRequest {
            model: req.scope.model.clone(),
            prompt,
            continue_history: history,
            images: req.images.clone(),
        };
        let is_continued = turn_req.continue_history.is_some();
        tracing::debug!(continued = is_continued, prompt_chars = turn_req.prompt.len(), account = %account.label(), "starting upstream turn");
        let started = match context::send(&self.engine, account, &context, turn_req).await {
            Ok(r) => self.engine.start_turn(account, r).await,
            Err(e) => Err(e),
        };
        Ok(started.map(|turn| Begun {
            turn,
            continued: is_continued,
            turns_before,
            extra_turns: context.len() as u32,
        }))
    }

    /// The CLI API: the client's request (or the internal model written as one), native tools.
    async fn start_cli(
        &self,
        req: &Request<'_>,
        account: &CliAccount,
    ) -> Result<Begun, UpstreamError> {
        let model = req.route.cli_model.as_deref().unwrap_or(&req.scope.model);
        let body = cli_body::body(&req.chat, model, &req.images);
        let session = session_id(&conversation_key(&req.scope, &req.chat.messages));
        tracing::debug!(account = %account.label(), model, "starting a CLI turn");
        let turn = self.cli.start_turn(account, &session, body).await?;
        Ok(Begun {
            turn,
            continued: false,
            turns_before: 0,
            extra_turns: 0,
        })
    }

    /// The running turn of a request whose first attempt succeeded.
    fn running(&self, req: &mut Request<'_>, begun: Begun, lease: Lease) -> Running {
        let web = lease.login.web().cloned();
        let account_id = match &lease.login {
            Login::Web(a) => a.identity().map(|i| account_id_for_user(&i.user_id)),
            Login::Cli(a) => Some(a.id().to_string()),
        };
        let emulation = match web {
            Some(_) => req.tools.clone().map(emulate::Emulation::new),
            None => None,
        };
        Running {
            continued: begun.continued,
            completion: Completion {
                history: begun.turn.history.clone(),
                scope: req.scope.clone(),
                prefix: Fingerprint::start(&req.scope, &req.chat.messages),
                account_id,
                fingerprints: lease.login.kind() == Kind::Web,
                turns_before: begun.turns_before,
                extra_turns: begun.extra_turns.into(),
            },
            turn: begun.turn,
            emulation,
            engine: Arc::clone(&self.engine),
            _active: ActiveGuard::new(),
            _lease: lease,
        }
    }
}

/// What identifies a client conversation for the CLI door's session headers: the client's own
/// session id when it sends one, else the conversation's start (system prompt and first user
/// message) under the client key, so every turn of one conversation shares one `ses_` id.
fn conversation_key(scope: &Scope, messages: &[Message]) -> String {
    if let Some(s) = &scope.session {
        return format!("session:{s}");
    }
    let start: Vec<Message> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .chain(messages.iter().find(|m| m.role == Role::User))
        .cloned()
        .collect();
    let plain = Scope {
        client: scope.client.clone(),
        model: scope.model.clone(),
        ..Scope::default()
    };
    Fingerprint::of(&plain, &start).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_conversation_keeps_one_session_key() {
        let scope = Scope {
            client: "k".into(),
            model: "m".into(),
            ..Scope::default()
        };
        let first = [Message::new(Role::User, "hi")];
        let later = [
            Message::new(Role::User, "hi"),
            Message::new(Role::Assistant, "hello"),
            Message::new(Role::User, "more"),
        ];
        assert_eq!(
            conversation_key(&scope, &first),
            conversation_key(&scope, &later)
        );
        let other = [Message::new(Role::User, "another topic")];
        assert_ne!(
            conversation_key(&scope, &first),
            conversation_key(&scope, &other)
        );
        let with_session = Scope {
            session: Some("abc".into()),
            ..scope.clone()
        };
        assert_eq!(conversation_key(&with_session, &other), "session:abc");
    }
}
