//! # enginelabs-2api
//!
//! An OpenAI- and Anthropic-compatible API in front of cto.new (EngineLabs): its web agent and
//! its CLI API, with tool calls on every client API.
//!
//! # Layout
//! - [`catalog`]: the model catalogue (live `GET /chat/adapters`, configured `MODELS`, aliases);
//! - [`config`]: one `Config` from flags, environment and `.env`, validated at start-up;
//! - [`logging`]: the pretty log format's field formatter, which escapes control characters;
//! - [`upstream`]: the cto.new client: the web door (Clerk session and JWT, trigger calls,
//!   WebSocket stream) and the CLI door (`upstream::cli`: OAuth refresh, Chat Completions SSE);
//! - [`conversation`]: fingerprints and prompts that keep a conversation in one upstream history;
//! - [`pool`]: the cto.new accounts of both kinds: scheduling, health, failover, admin operations;
//! - [`relay`]: a request in the internal model (`relay::Chat`) run through the account's door:
//!   continuity, context turns, tool emulation, failover;
//! - [`store`]: where conversation mappings and rotated secrets (cookies, CLI refresh tokens) live
//!   (memory, redb, Redis);
//! - [`server`]: the HTTP surface (`/v1/chat/completions`, `/v1/responses`, `/v1/messages`,
//!   `/v1/models`, admin), errors, auth, the accept loop;
//! - [`metrics`]: every Prometheus metric, declared in one place;
//! - [`tokens`]: the tokenizer estimates for `usage` and `count_tokens`;
//! - [`cleanup`]: deleting expired upstream chats;
//! - [`cli`], [`run`]: the command line and what each subcommand does;
//! - [`tools`]: client tools without a tool API: described in the prompt, calls parsed back out
//!   of the streamed answer (`docs/tool-emulation.md`); pure, names no other module;
//! - [`simulator`]: our own cto.new (Clerk + EngineLabs + WebSocket, with fault injection) that
//!   tests, benchmarks and the demo run against. It shares no code with [`upstream`], so a
//!   misreading of the protocol notes shows up as a failing test rather than agreement;
//! - [`capture`]: what `doctor --capture` records and `simulate --replay` serves, redacted;
//! - [`doctor`]: `enginelabs-2api doctor`, every configured account checked step by step;
//! - [`bench`](mod@bench): the load tool behind `enginelabs-2api bench`.

pub mod bench;
pub mod capture;
pub mod catalog;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod doctor;
pub mod logging;
pub mod metrics;
pub mod pool;
pub mod relay;
pub mod run;
pub mod server;
pub mod simulator;
pub mod store;
pub mod tokens;
pub mod tools;
pub mod upstream;

pub use server::{AppState, app};
