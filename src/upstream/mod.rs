//! The cto.new client: everything that speaks to Clerk and to EngineLabs.
//!
//! # Layout
//! One file per step of the protocol (see `../shared/upstream-protocol.md`):
//! - [`cookie`]: parse the pasted browser cookie, keep the rotated `__client`;
//! - [`jwt`]: read a session token's claims (`exp`, `sub`) without verifying it;
//! - [`account`]: one login: rotating cookie, identity, cached JWT, locks;
//! - [`clerk`]: session discovery (`GET /v1/client`) and single-flight JWT minting;
//! - [`engine`]: the EngineLabs REST client: each call ([`engine::EngineCall`]: method, path,
//!   name) that sets up and starts a turn, Gen-1 and Gen-2, and the side calls;
//! - [`images`]: images of a turn (limits, `data:`/`https:` loading, Gen-2 presign + PUT upload);
//! - [`frame`]: the WebSocket frame grammar and the turn tracker (deltas, thinking, end of turn);
//! - `answer`: what every answer is checked for (Cloudflare challenges, `Retry-After`), and
//!   bodies cut short for error messages;
//! - [`transport`]: the HTTP and WebSocket stack under all of it (plain, or Chrome-impersonating
//!   with the `impersonate` feature);
//! - [`ledger`]: how much of each message was delivered, so a replayed stream repeats nothing;
//! - [`stream`]: the WebSocket itself (connect, ping, idle timeout, closing), read on demand by
//!   the [`Turn`], and reconnecting a dropped one (Gen-1 from the server's replay, Gen-2 from the
//!   `history` snapshot read by [`snapshot`]);
//! - [`tap`]: a copy of every frame with its arrival time, for `doctor`'s report;
//! - [`client`]: [`EngineClient`], which runs one turn end to end and hands back a [`Turn`];
//! - [`cli`]: the second door, the `cto` CLI's OpenAI-compatible API with OAuth refresh tokens
//!   ([`cli::CliClient`]).
//!
//! Apart from the CLI door, whose API is OpenAI's own, nothing here knows about OpenAI: the
//! server layer turns [`TurnEvent`]s into SSE or JSON.

pub mod account;
mod answer;
pub mod clerk;
#[cfg(test)]
mod clerk_tests;
pub mod cli;
pub mod client;
pub mod cookie;
pub mod engine;
pub mod error;
pub mod frame;
pub mod images;
pub mod jwt;
pub mod ledger;
pub mod snapshot;
pub mod stream;
pub mod tap;
#[cfg(test)]
mod test_frames;
pub mod transport;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use clerk::{Account, Identity};
pub use client::EngineClient;
pub use engine::Adapter;
pub use error::{ErrorKind, UpstreamError};

/// Which protocol generation to speak (`UPSTREAM_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Try Gen-2, fall back to Gen-1 when its setup calls answer 404/405; remember the answer.
    Auto,
    Gen1,
    Gen2,
}

/// A protocol generation actually in use for a chat history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generation {
    Gen1,
    Gen2,
}

impl Generation {
    pub fn as_str(self) -> &'static str {
        match self {
            Generation::Gen1 => "gen1",
            Generation::Gen2 => "gen2",
        }
    }
}

/// Settings of the upstream client. Every base URL is configurable so that tests, the demo
/// and the benchmark can point the real client at the simulator.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Clerk Frontend API base, e.g. `https://clerk.cto.new` (paths add `/v1/...`).
    pub clerk_base_url: String,
    /// EngineLabs REST base, e.g. `https://api.enginelabs.ai`.
    pub engine_base_url: String,
    /// WebSocket base derived from `engine_base_url` (http->ws, https->wss).
    pub ws_base_url: String,
    pub protocol: ProtocolChoice,
    /// Deadline for each REST call and for the WebSocket handshake.
    pub request_timeout: Duration,
    /// A turn fails when no frame at all (not even `pong`) arrives for this long.
    pub idle_timeout: Duration,
    /// Interval of the text `ping` heartbeat.
    pub ping_interval: Duration,
    /// `Origin` sent to both hosts (`https://cto.new`); `Referer` is this plus `/`.
    pub origin: String,
    pub user_agent: String,
    /// `User-Agent` of the CLI door's requests (`CLI_USER_AGENT`; opencode's by default).
    pub cli_user_agent: String,
    pub clerk_api_version: String,
    pub clerk_js_version: String,
    /// Every call to cto.new goes through this HTTP proxy when set (`UPSTREAM_PROXY`).
    pub proxy: Option<transport::UpstreamProxy>,
    /// Whether image URLs sent by clients may point at private or local addresses
    /// (`ALLOW_PRIVATE_IMAGE_URLS`).
    pub allow_private_image_urls: bool,
}

impl UpstreamConfig {
    /// The real cto.new endpoints with the browser-like defaults of the protocol notes.
    pub fn cto_new() -> Self {
        Self::with_urls("https://clerk.cto.new", "https://api.enginelabs.ai")
    }

    /// Defaults with the given base URLs (trailing slashes removed, WS URL derived).
    pub fn with_urls(clerk_base_url: &str, engine_base_url: &str) -> Self {
        let engine = engine_base_url.trim_end_matches('/').to_string();
        UpstreamConfig {
            clerk_base_url: clerk_base_url.trim_end_matches('/').to_string(),
            ws_base_url: derive_ws_url(&engine),
            engine_base_url: engine,
            protocol: ProtocolChoice::Auto,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            ping_interval: Duration::from_secs(30),
            origin: "https://cto.new".to_string(),
            user_agent: DEFAULT_USER_AGENT.to_string(),
            cli_user_agent: cli::DEFAULT_CLI_USER_AGENT.to_string(),
            clerk_api_version: "2025-11-10".to_string(),
            clerk_js_version: "6.7.3".to_string(),
            proxy: None,
            allow_private_image_urls: false,
        }
    }
}

/// A current desktop Chrome user agent (one per process; the protocol notes advise one per account).
pub const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/147.0.0.0 Safari/537.36";

/// `http://x` -> `ws://x`, `https://x` -> `wss://x`; anything else is kept as given.
pub fn derive_ws_url(engine_base_url: &str) -> String {
    if let Some(rest) = engine_base_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = engine_base_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        engine_base_url.to_string()
    }
}

/// Where a conversation lives upstream: enough to send a follow-up turn into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRef {
    pub generation: Generation,
    /// The chat history id (Gen-1: our UUID; Gen-2: the hosted project id).
    pub chat_history_id: String,
    /// Gen-2 only: the workspace the project lives in (part of the WebSocket URL).
    pub workspace_id: Option<String>,
}

/// One turn to run upstream.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    /// The model as the client named it; the client resolves it per generation.
    pub model: String,
    /// The text to send (only the new user turn when continuing, else the whole transcript).
    pub prompt: String,
    /// `Some` to continue an existing upstream history, `None` for a new one.
    pub continue_history: Option<HistoryRef>,
    /// Images of the new turn, uploaded before the trigger (Gen-2 and image models only).
    pub images: Vec<images::ImageData>,
}

/// What a running turn yields, in order. A stream always ends with `Finished` or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// New reasoning text (a `thinking` frame's delta).
    Reasoning(String),
    /// New visible answer text (a `chat` frame's delta).
    Content(String),
    /// A tool call begins: its index among this answer's calls, its id and the tool's name.
    /// (The web door emits it once the emulated call parsed; the CLI door as it streams.)
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// More of the JSON arguments of call `index`.
    ToolCallArgs { index: usize, delta: String },
    /// Call `index` is complete.
    ToolCallEnd { index: usize },
    /// Why the upstream stopped, when it says so (the CLI door). Without it an answer stopped
    /// normally, or for its tool calls when it made some.
    Stopped(FinishReason),
    /// Token usage as the upstream counted it (the CLI door; the web door reports none).
    Usage(Usage),
    /// The upstream said the turn is over.
    Finished { cancelled: bool },
}

/// Why an answer ended, in the internal model (each client API names these its own way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

impl FinishReason {
    /// OpenAI Chat Completions' `finish_reason`.
    pub fn openai(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }

    /// Anthropic's `stop_reason`.
    pub fn anthropic(self) -> &'static str {
        match self {
            FinishReason::Stop => "end_turn",
            FinishReason::Length => "max_tokens",
            FinishReason::ToolCalls => "tool_use",
            FinishReason::ContentFilter => "refusal",
        }
    }

    /// Reads an OpenAI `finish_reason` liberally (unknown values are a normal stop).
    pub fn from_openai(s: &str) -> FinishReason {
        match s {
            "length" => FinishReason::Length,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            _ => FinishReason::Stop,
        }
    }
}

/// Token counts reported by the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A turn in flight, read as its consumer asks for events: no task or channel of its own, so
/// each upstream frame wakes only the consumer. Dropping it closes the upstream connection.
pub struct Turn {
    /// The history this turn ran in (new or continued).
    pub history: HistoryRef,
    source: Source,
}

/// Where a turn's events come from.
enum Source {
    /// The web door's WebSocket.
    Web(Box<stream::TurnReader>),
    /// The CLI door's answer body.
    Cli(Box<cli::BodyReader>),
}

impl Turn {
    pub(crate) fn web(history: HistoryRef, reader: stream::TurnReader) -> Self {
        Turn {
            history,
            source: Source::Web(Box::new(reader)),
        }
    }

    pub(crate) fn cli(history: HistoryRef, reader: cli::BodyReader) -> Self {
        Turn {
            history,
            source: Source::Cli(Box::new(reader)),
        }
    }

    /// The next event, or `None` after `Finished`/an error was delivered.
    pub async fn next(&mut self) -> Option<Result<TurnEvent, UpstreamError>> {
        match &mut self.source {
            Source::Web(reader) => reader.next().await,
            Source::Cli(reader) => reader.next().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_follows_scheme() {
        assert_eq!(
            derive_ws_url("https://api.enginelabs.ai"),
            "wss://api.enginelabs.ai"
        );
        assert_eq!(derive_ws_url("http://127.0.0.1:9"), "ws://127.0.0.1:9");
    }
}
