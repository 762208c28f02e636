//! # enginelabs-2api
//!
//! An OpenAI- and Anthropic-compatible API in front of cto.new (EngineLabs): its web agent and
//! its CLI API, with tool calls on every client API.
//!
//! # Layout
//! One line per module: the process (run, cli, config, logging), then the core in the order its
//! dependencies point (server → relay → pool / upstream / store → conversation) with the
//! helpers it uses, then the tools around it (simulator, capture, doctor, bench).
//! - [`run`]: what each subcommand does (serve, demo, simulate): start-up and shutdown;
//! - [`cli`]: the command line: subcommands and their flags;
//! - [`config`]: one `Config` from flags, environment and `.env`, validated at start-up;
//! - [`logging`]: the pretty log format's field formatter, which escapes control characters;
//! - [`server`]: the HTTP surface: the three client APIs, admin API and page, errors, accept loop;
//! - [`catalog`]: the model catalogue (live `GET /chat/adapters`, configured `MODELS`, aliases);
//! - [`relay`]: one request run through an account's door: continuity, context turns, failover;
//! - [`tools`]: client tools without a tool API: offered in the prompt, calls parsed back out;
//! - [`pool`]: the cto.new accounts of both kinds: scheduling, health, quotas, admin operations;
//! - [`upstream`]: the cto.new client: the web door (Clerk, REST, WebSocket) and the CLI door;
//! - [`store`]: conversation mappings and rotated secrets, in memory, redb or Redis;
//! - [`conversation`]: fingerprints and prompts that keep a conversation in one upstream history;
//! - [`tokens`]: the tokenizer estimates for `usage` and `count_tokens`;
//! - [`metrics`]: every Prometheus metric, declared in one place with its help text;
//! - [`cleanup`]: the task that forgets expired conversations and their upstream chats;
//! - [`simulator`]: our own cto.new with fault injection, sharing no code with [`upstream`];
//! - [`capture`]: what `doctor --capture` records and `simulate --replay` serves, redacted;
//! - [`doctor`]: `enginelabs-2api doctor`: every configured account checked step by step;
//! - [`bench`](mod@bench): the load tool behind `enginelabs-2api bench`.
//!
//! The simulator follows the protocol notes on its own, so a misreading of them on either side
//! shows up as a failing test rather than agreement.

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
