//! A simulator of cto.new: the Clerk Frontend API, the EngineLabs REST API and its streaming
//! WebSocket on one port, with fault injection, so tests, the demo mode and the benchmark run
//! without reaching the real service. It follows the protocol notes
//! (`/work/shared/upstream-protocol.md`) and shares no code with [`crate::upstream`], so a
//! misreading of the notes on either side shows up as a failing test.
//!
//! # Layout
//! - `util`: locking, random ids and clocks (a leaf every file may use);
//! - `state`: accounts, chat histories and their turns' frames, faults, counters, uploads;
//! - `stats`: the counters and records tests read ([`SimStats`]);
//! - `jwt`: HS256 session tokens (mint, verify);
//! - `clerk`: `GET /v1/client`, `POST /v1/client/sessions/{sid}/tokens`;
//! - `respond`: what the EngineLabs routes share (error body, bearer-JWT and body checks);
//! - `catalogue`: the fixed model catalogue;
//! - `engine`: the EngineLabs REST calls;
//! - `images`: the presigned image upload (`/images/presign`, the PUT target, the "CDN");
//! - `model`: the simulated model, which decides what a turn answers (the deterministic reply,
//!   or the tool-emulation answers of `docs/tool-emulation.md`);
//! - `prompt`: reading the proxy's prompts (sections, tool results, `call` lines, directives);
//! - `tool_block`: the `<<<TOOL_CALLS>>>` block the model writes, correct, garbled or drifted;
//! - `script`: reply texts and the frames of a turn (pure);
//! - `turn`: the task that streams a turn's frames into its history;
//! - `ws`: the `buffer/stream` WebSocket;
//! - `snapshot`: the `history` frame sent at connect (finished turns, and the running one so far);
//! - `logins`: the CLI door's refresh and access tokens and their rules (plain data);
//! - `cli`: the CLI door (protocol notes §10): OAuth refresh tokens, `/models`,
//!   `/chat/completions` with native tool calls, all in OpenAI's shapes;
//! - `control`: the `/__sim` control plane and the Cloudflare-challenge fault;
//! - [`replay`]: `simulate --replay FILE`, a capture served as the upstream instead.
//!
//! # Routes (all on [`Simulator::url`], used as both CLERK_BASE_URL and ENGINE_BASE_URL)
//! - Clerk: `GET /v1/client`, `POST /v1/client/sessions/{sid}/tokens`;
//! - EngineLabs: `GET /chat/adapters`, `PATCH /teams/preferred-model`,
//!   `POST /projects/create-hosted`, `POST /engine-agent/offers` (Gen-2 only),
//!   `POST /engine-agent/chat`, `GET /billing`, `GET /current-user`,
//!   `DELETE /engine-agent/chat-histories/{id}`, `POST /images/presign`, WebSocket
//!   `GET /engine-agent/chat-histories/{id}/buffer/stream`;
//! - CLI door (OAuth access token, see `cli`): `POST /oauth/token`, `GET /models`,
//!   `POST /chat/completions`;
//! - image storage (no JWT: presigned): `PUT /__uploads/{id}`, `GET /cdn/{file}`;
//! - control: `GET /__sim/stats[?triggers=1][&completions=1]`, `GET|POST /__sim/faults`,
//!   `GET|POST /__sim/accounts`,
//!   `POST /__sim/accounts/{user_id}/{revoke|restore|replace-session|cli-login}`.
//!
//! A Gen-1 history exists only once a trigger created it, so a Gen-1 client triggers first and
//! then connects (the socket replays the turn from its start); a Gen-2 client must connect
//! before triggering, as the real Gen-2 loses what was sent before the socket opened.

mod catalogue;
mod clerk;
mod cli;
mod control;
mod engine;
mod images;
mod jwt;
mod logins;
mod model;
mod prompt;
pub mod replay;
mod respond;
mod script;
mod snapshot;
mod state;
mod stats;
mod tool_block;
mod turn;
mod util;
mod ws;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, patch, post};
use tokio_util::sync::CancellationToken;

pub use script::{reply_text, thinking_text};
use state::{Account, Inner, SimState};
pub use stats::{CliCompletionRecord, SeenClient, SimStats, TriggerRecord};
use util::lock;

/// Start-up settings of a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Lifetime of minted JWTs (`exp - iat`). cto.new uses 60 s; tests use a few seconds.
    pub token_ttl: Duration,
    /// Whether the Gen-1 trigger (`adapterName`) is accepted.
    pub gen1: bool,
    /// Whether the Gen-2 setup calls exist (when false they answer 404).
    pub gen2: bool,
    /// Words in each deterministic reply (see [`reply_text`]).
    pub reply_words: usize,
    /// Pause between two streamed frames.
    pub frame_delay: Duration,
    /// Whether Clerk rotates `__client` on every mint (`Set-Cookie`).
    pub rotate_cookies: bool,
    /// Largest prompt a trigger accepts, in bytes of decoded UTF-8 (both generations); above
    /// it the trigger answers 413 `Message too large`. cto.new refuses near 20 000 bytes.
    pub max_prompt_bytes: usize,
    /// Lifetime of the CLI door's access tokens (`expires_in`, whole seconds on the wire).
    /// The CLI sees 900 s; tests use a second or two.
    pub cli_token_ttl: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            token_ttl: Duration::from_secs(60),
            gen1: true,
            gen2: true,
            reply_words: 24,
            frame_delay: Duration::ZERO,
            rotate_cookies: true,
            max_prompt_bytes: 20_000,
            cli_token_ttl: Duration::from_secs(900),
        }
    }
}

/// Faults that tests switch on at run time (also `POST /__sim/faults` as JSON).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Faults {
    /// The next `trigger_status_count` trigger calls answer this status without starting a turn
    /// (429 adds `Retry-After: 1`). A count of 0 means every call, until the fault is cleared.
    /// The CLI door's `/chat/completions` counts as a trigger (OpenAI error body).
    pub trigger_status: Option<u16>,
    pub trigger_status_count: u32,
    /// Limits `trigger_status` to this user's triggers (one sick account among healthy ones).
    pub trigger_status_user: Option<String>,
    /// Drop the WebSocket (no close frame) after it has sent this many assistant (`chat`/
    /// `thinking`) updates of one turn. Counted per socket, so a Gen-1 reconnect that replays
    /// the turn is dropped again; clear the fault to let a retry through. On the CLI door, the
    /// SSE body breaks off after this many reasoning, content or tool-call deltas.
    pub ws_drop_after: Option<u32>,
    /// Extra delay before each frame (and each CLI chunk), in milliseconds.
    pub slow_frame_ms: u64,
    /// Send `chat.content` as cumulative buffers instead of deltas.
    pub cumulative: bool,
    /// Send `thinking` frames (CLI: `reasoning_content` deltas) before the answer.
    pub thinking: bool,
    /// Skip the idle `state{inProgress:false}` that real cto.new sends right after connect.
    pub no_idle_state_at_connect: bool,
    /// On connect, replay the previous finished turn of the history before the current one.
    pub replay_previous_turn: bool,
    /// The `history` frame sent at connect leaves out the running turn (finished turns only),
    /// so a Gen-2 client that reconnects mid-turn cannot find what it missed.
    pub history_without_running_turn: bool,
    /// Accept the trigger but never send any frame (idle-timeout tests). CLI: 200 and headers,
    /// then nothing.
    pub silent: bool,
    /// Every Clerk and EngineLabs REST call answers a Cloudflare challenge page (403,
    /// `cf-mitigated: challenge`, HTML).
    pub cloudflare_challenge: bool,
    /// A revoked account's `GET /v1/client` answers 200 with no active session instead of 401.
    pub revoked_as_empty_client: bool,
    /// Mid-stream, also send an unknown outer frame (`presence`) and a `tool_call` update.
    pub extra_frames: bool,
    /// User ids whose CLI refresh is refused (400 `invalid_grant`, the token not spent), as
    /// after a logout elsewhere.
    pub cli_refresh_refused: Vec<String>,
}

/// One account of the simulated Clerk instance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SimAccount {
    pub user_id: String,
    pub org_id: String,
    pub session_id: String,
    /// A browser-style `Cookie:` header with the current `__client` value.
    pub cookie: String,
}

/// An account's CLI login (what `~/.cto/credentials` would hold, less the access token, which
/// `POST /oauth/token` hands out).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SimCliAccount {
    pub user_id: String,
    /// The live refresh token. It rotates on every use: read it again with
    /// [`Simulator::cli_account`] after the client has refreshed.
    pub refresh_token: String,
}

/// A running simulator. Dropping it stops the server, its sockets and its turn tasks.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<SimState>,
}

impl Simulator {
    /// Starts on `127.0.0.1:0` with one account already created.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Simulator> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?, cfg).await
    }

    /// Binds `addr` and serves in a spawned task, with one account already created.
    pub async fn start_on(addr: SocketAddr, cfg: SimConfig) -> std::io::Result<Simulator> {
        // A deep accept queue: the benchmark opens a thousand sockets at once.
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let first = Account::new();
        let mut inner = Inner {
            first_user: first.user_id.clone(),
            ..Inner::default()
        };
        inner.accounts.insert(first.user_id.clone(), first);
        let state = Arc::new(SimState {
            cfg,
            jwt: jwt::JwtKey::random(),
            inner: Mutex::new(inner),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(SimStats::default()),
            cli: Mutex::new(logins::Logins::default()),
            cancel: CancellationToken::new(),
        });
        let app = router(Arc::clone(&state));
        let cancel = state.cancel.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "simulator server stopped");
            }
        });
        Ok(Simulator { addr, state })
    }

    /// `http://127.0.0.1:PORT`: serves both the Clerk and the EngineLabs paths.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first account, created at start (with its current `__client`).
    pub fn account(&self) -> SimAccount {
        let inner = lock(&self.state.inner);
        match inner.accounts.get(&inner.first_user) {
            Some(acc) => acc.public(),
            // The first account is never removed; this arm only keeps the signature total.
            None => SimAccount {
                user_id: String::new(),
                org_id: String::new(),
                session_id: String::new(),
                cookie: String::new(),
            },
        }
    }

    /// The current view of any account (its cookie may have rotated since it was created).
    pub fn account_of(&self, user_id: &str) -> Option<SimAccount> {
        lock(&self.state.inner)
            .accounts
            .get(user_id)
            .map(Account::public)
    }

    pub fn add_account(&self) -> SimAccount {
        control::add_account(&self.state)
    }

    /// Logs an existing account in on the CLI door: a new refresh token (the previous one dies).
    /// `None` for an unknown user.
    pub fn cli_login(&self, user_id: &str) -> Option<SimCliAccount> {
        cli::login(&self.state, user_id)
    }

    /// A new account, logged in on the CLI door.
    pub fn add_cli_account(&self) -> SimCliAccount {
        let acc = self.add_account();
        self.cli_login(&acc.user_id).unwrap_or(SimCliAccount {
            user_id: acc.user_id,
            refresh_token: String::new(),
        })
    }

    /// The account's CLI login as it stands now (its refresh token rotates on every use).
    pub fn cli_account(&self, user_id: &str) -> Option<SimCliAccount> {
        let logins = lock(&self.state.cli);
        logins.current(user_id).map(|t| SimCliAccount {
            user_id: user_id.to_owned(),
            refresh_token: t.to_owned(),
        })
    }

    /// Makes Clerk answer 401 for this user's cookie until [`Simulator::restore`].
    pub fn revoke(&self, user_id: &str) {
        control::set_revoked(&self.state, user_id, true);
    }

    pub fn restore(&self, user_id: &str) {
        control::set_revoked(&self.state, user_id, false);
    }

    /// Gives the user a new session id: the old one answers 404 on mint, `/v1/client` shows the
    /// new one. Returns the new id (empty for an unknown user).
    pub fn replace_session(&self, user_id: &str) -> String {
        control::replace_session(&self.state, user_id).unwrap_or_default()
    }

    /// Replaces every fault.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults;
    }

    pub fn faults(&self) -> Faults {
        lock(&self.state.faults).clone()
    }

    pub fn stats(&self) -> SimStats {
        lock(&self.state.stats).clone()
    }

    /// The bytes stored behind an image's final URL (`None` until its PUT completed).
    pub fn uploaded(&self, final_url: &str) -> Option<Vec<u8>> {
        images::uploaded(&self.state, final_url)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.state.cancel.cancel();
    }
}

/// Every route on one port: Clerk under `/v1`, EngineLabs at the root, control under `/__sim`.
fn router(state: Arc<SimState>) -> Router {
    let rest = Router::new()
        .route("/v1/client", get(clerk::get_client))
        .route("/v1/client/sessions/{sid}/tokens", post(clerk::mint_token))
        .route("/chat/adapters", get(engine::adapters))
        .route("/teams/preferred-model", patch(engine::preferred_model))
        .route("/projects/create-hosted", post(engine::create_hosted))
        .route("/engine-agent/offers", post(engine::offers))
        .route("/engine-agent/chat", post(engine::trigger))
        .route("/billing", get(engine::billing))
        .route("/current-user", get(engine::current_user))
        .route("/images/presign", post(images::presign))
        .route("/oauth/token", post(cli::token))
        .route("/models", get(cli::models))
        .route("/chat/completions", post(cli::chat_completions))
        .route(
            "/engine-agent/chat-histories/{id}",
            delete(engine::delete_history),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            control::cloudflare,
        ));
    Router::new()
        .merge(rest)
        .route(
            "/engine-agent/chat-histories/{id}/buffer/stream",
            get(ws::stream),
        )
        .route(
            "/__uploads/{id}",
            axum::routing::put(images::put)
                .layer(axum::extract::DefaultBodyLimit::max(21 * 1024 * 1024)),
        )
        .route("/cdn/{file}", get(images::cdn))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            control::record_client,
        ))
        .route("/__sim/stats", get(control::stats))
        .route(
            "/__sim/faults",
            post(control::set_faults).get(control::get_faults),
        )
        .route(
            "/__sim/accounts",
            post(control::create_account).get(control::list_accounts),
        )
        .route(
            "/__sim/accounts/{user_id}/{action}",
            post(control::account_action),
        )
        .with_state(state)
}
