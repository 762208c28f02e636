//! TODO(simulator helper): a simulator of cto.new. The public API below is the contract that
//! the tests, the demo and the benchmark code against; bodies are filled in by the helper.

use std::net::SocketAddr;
use std::time::Duration;

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
        }
    }
}

/// Faults that tests switch on at run time (also `POST /__sim/faults` as JSON).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Faults {
    /// The next `count` trigger calls answer this status.
    pub trigger_status: Option<u16>,
    pub trigger_status_count: u32,
    /// Close the WebSocket after this many assistant update frames of a turn.
    pub ws_drop_after: Option<u32>,
    /// Extra delay before each frame, in milliseconds.
    pub slow_frame_ms: u64,
    /// Send `chat.content` as cumulative buffers instead of deltas.
    pub cumulative: bool,
    /// Send `thinking` frames before the answer.
    pub thinking: bool,
    /// Send the idle `state{inProgress:false}` right after connect (true in real cto.new).
    pub no_idle_state_at_connect: bool,
    /// On connect, replay the previous finished turn of the history before the current one.
    pub replay_previous_turn: bool,
    /// Accept the trigger but never send any frame (idle-timeout tests).
    pub silent: bool,
}

/// One account of the simulated Clerk instance.
#[derive(Debug, Clone)]
pub struct SimAccount {
    pub user_id: String,
    pub org_id: String,
    pub session_id: String,
    /// A browser-style `Cookie:` header with the current `__client` value.
    pub cookie: String,
}

/// One trigger the simulator received, as it understood it.
#[derive(Debug, Clone)]
pub struct TriggerRecord {
    pub generation: &'static str,
    pub user_id: String,
    pub chat_history_id: String,
    /// The model the turn ran with (Gen-1 `adapterName`, Gen-2 the team's preferred model).
    pub model: String,
    /// The prompt text (decoded from base64 for Gen-2).
    pub prompt: String,
    /// 1-based turn number within its chat history.
    pub turn: u32,
}

/// Counters for assertions.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    pub client_calls: u64,
    pub mints: u64,
    pub triggers: Vec<TriggerRecord>,
    pub ws_opened: u64,
    pub ws_open_now: u64,
    /// Sockets the client closed (or dropped) before the turn finished.
    pub ws_closed_early: u64,
    pub rejected_jwts: u64,
}

/// The deterministic reply the simulator streams for `turn` of a history whose latest prompt is
/// `prompt`, with `words` words in all.
pub fn reply_text(prompt: &str, turn: u32, words: usize) -> String {
    let _ = (prompt, turn, words);
    todo!()
}

/// The deterministic reasoning streamed before the reply when `Faults::thinking` is on.
pub fn thinking_text(turn: u32) -> String {
    let _ = turn;
    todo!()
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    addr: SocketAddr,
}

impl Simulator {
    /// Starts on `127.0.0.1:0` with one account already created.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Simulator> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?, cfg).await
    }
    pub async fn start_on(addr: SocketAddr, cfg: SimConfig) -> std::io::Result<Simulator> {
        let _ = cfg;
        Ok(Simulator { addr })
    }
    /// `http://127.0.0.1:PORT`: serves both the Clerk and the EngineLabs paths.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The first account, created at start.
    pub fn account(&self) -> SimAccount {
        todo!()
    }
    pub fn add_account(&self) -> SimAccount {
        todo!()
    }
    /// Makes Clerk answer 401 for this user's cookie until [`Simulator::restore`].
    pub fn revoke(&self, user_id: &str) {
        let _ = user_id;
        todo!()
    }
    pub fn restore(&self, user_id: &str) {
        let _ = user_id;
        todo!()
    }
    pub fn set_faults(&self, faults: Faults) {
        let _ = faults;
        todo!()
    }
    pub fn stats(&self) -> SimStats {
        todo!()
    }
}
