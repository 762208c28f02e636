//! The CLI door (protocol notes §10): the OpenAI-compatible Chat Completions API that the `cto`
//! command-line agent uses on the EngineLabs host, authorised by short-lived OAuth access
//! tokens bought with a rotating refresh token. No Clerk, no trigger, no WebSocket: the body is
//! the client's own OpenAI request, and tools are native.
//!
//! Everything here was written from the protocol notes, not from the simulator: where the two
//! read the notes differently, the integration tests (`tests/cli_door.rs`,
//! `tests/cli_door_tokens.rs`) fail.
//!
//! # Layout
//! One file per step:
//! - [`credentials`]: what `cto login` leaves in `~/.cto/credentials`, and [`Secret`];
//! - [`oauth`]: `POST /oauth/token`, one refresh, and what its refusals mean;
//! - [`token`]: [`TokenHolder`], an account's tokens: cached access token, single-flight
//!   refresh, rotations handed to a [`RefreshStore`];
//! - [`account`]: [`CliAccount`] (label, stable id, tokens) and the `ses_` session ids;
//! - [`chat`]: `POST /chat/completions`: the body we send, headers, one refresh on a 401;
//! - [`refusal`]: what a non-success answer of the API means, with secrets scrubbed;
//! - [`sse`]: server-sent-event framing, bytes in, event data out;
//! - [`events`]: OpenAI chunks (or a whole `chat.completion`) into [`TurnEvent`]s;
//! - `reader`: [`BodyReader`], one answer's body read as the turn's events are asked for;
//! - [`models`]: `GET /models`.
//!
//! [`CliClient`] ties them together: [`CliClient::start_turn`] returns a [`Turn`] as soon as the
//! answer's head arrived; dropping the turn closes the connection.
//!
//! [`TurnEvent`]: crate::upstream::TurnEvent

pub mod account;
pub mod chat;
pub mod credentials;
pub mod events;
pub mod models;
pub mod oauth;
mod reader;
pub mod refusal;
pub mod sse;
pub mod token;

use std::time::Duration;

use serde_json::Value;

use super::transport::Transport;
use super::{Generation, HistoryRef, Turn, UpstreamConfig, UpstreamError};

pub use account::{CliAccount, seed_hash, session_id};
pub use credentials::{Credentials, Secret};
pub use reader::BodyReader;
pub use token::{NoStore, RefreshGuard, RefreshStore, Rotation, TokenHolder};

/// opencode's user agent as the protocol notes saw it (§10, P-cli).
pub const DEFAULT_CLI_USER_AGENT: &str =
    "opencode/1.15.0 ai-sdk/provider-utils/4.0.23 runtime/bun/1.3.13";

/// How long before its expiry an access token is replaced (P-cli: 120 s).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// Settings of the CLI door.
#[derive(Debug, Clone)]
pub struct CliConfig {
    /// The API base, the EngineLabs host (`https://api.enginelabs.ai`, no trailing slash).
    pub base_url: String,
    /// Sent on every call: the door belongs to opencode, so it is opencode's, not Chrome's.
    pub user_agent: String,
    /// An access token is refreshed once less than this is left (at most half its lifetime,
    /// so a short-lived token is not refreshed on every call).
    pub refresh_margin: Duration,
    /// Bounds each refresh and `/models` call.
    pub request_timeout: Duration,
    /// Bounds the wait for a completion's head and every silence of its body (a reasoning
    /// model may think long before its first byte, so this is the long idle timeout, not the
    /// request timeout).
    pub idle_timeout: Duration,
}

impl CliConfig {
    /// The door on the upstream's EngineLabs host, with its timeouts and the defaults above.
    pub fn from_upstream(cfg: &UpstreamConfig) -> Self {
        CliConfig {
            base_url: cfg.engine_base_url.trim_end_matches('/').to_string(),
            user_agent: cfg.cli_user_agent.clone(),
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            request_timeout: cfg.request_timeout,
            idle_timeout: cfg.idle_timeout,
        }
    }
}

/// The CLI door's client, shared by all requests (one HTTP connection pool).
#[derive(Clone)]
pub struct CliClient {
    cfg: CliConfig,
    http: Transport,
}

impl CliClient {
    /// A client with its own transport (`UPSTREAM_PROXY` applies) and the default settings.
    pub fn new(upstream: &UpstreamConfig) -> Result<Self, UpstreamError> {
        Ok(Self::with_transport(
            CliConfig::from_upstream(upstream),
            Transport::new(upstream)?,
        ))
    }

    /// A client on an existing transport (share the web door's connection pool).
    pub fn with_transport(cfg: CliConfig, http: Transport) -> Self {
        CliClient { cfg, http }
    }

    pub fn config(&self) -> &CliConfig {
        &self.cfg
    }

    /// A valid access token for the account (refreshing it first if it is about to expire).
    pub async fn access_token(&self, account: &CliAccount) -> Result<String, UpstreamError> {
        account.tokens().access(&self.http, &self.cfg).await
    }

    /// Sends one Chat Completions request (`body`, see [`chat::prepare`] for what is changed in
    /// it) in the client session `session_id` (a `ses_…` value, see [`session_id`]). Returns once
    /// the answer's head arrived; its events follow on the [`Turn`], streamed or not.
    ///
    /// The door has no upstream history: the turn's `history` is a stand-in naming the session
    /// (`chat_history_id` = `session_id`), never to be continued on the web door.
    pub async fn start_turn(
        &self,
        account: &CliAccount,
        session_id: &str,
        body: Value,
    ) -> Result<Turn, UpstreamError> {
        let body = chat::prepare(body);
        let opened = chat::open(&self.http, &self.cfg, account, session_id, &body).await?;
        let reader = BodyReader::new(opened, self.cfg.idle_timeout);
        let history = HistoryRef {
            generation: Generation::Gen2,
            chat_history_id: session_id.to_string(),
            workspace_id: None,
        };
        Ok(Turn::cli(history, reader))
    }

    /// The model ids the door offers this account (`GET /models`).
    pub async fn models(&self, account: &CliAccount) -> Result<Vec<String>, UpstreamError> {
        models::list(&self.http, &self.cfg, account).await
    }
}
