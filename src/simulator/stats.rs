//! What the simulator counts and records for assertions: [`SimStats`] and its records of
//! triggers, CLI completions and the clients each surface saw. Read with
//! [`super::Simulator::stats`] or `GET /__sim/stats`.

/// One `POST /chat/completions` the CLI door received (after its bearer check).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CliCompletionRecord {
    pub user_id: String,
    /// `x-session-id`.
    pub session_id: Option<String>,
    /// `x-session-affinity`.
    pub session_affinity: Option<String>,
    pub user_agent: Option<String>,
    /// The body as received, unknown fields included.
    pub body: serde_json::Value,
}

/// One trigger the simulator received, as it understood it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TriggerRecord {
    pub generation: &'static str,
    pub user_id: String,
    pub chat_history_id: String,
    /// The model the turn ran with (Gen-1 `adapterName` as sent, Gen-2 the catalogue `key` of
    /// the team's preferred model).
    pub model: String,
    /// The prompt text (decoded from base64 for Gen-2).
    pub prompt: String,
    /// 1-based turn number within its chat history.
    pub turn: u32,
    /// Gen-2 `imageUrls` (final URLs of completed uploads).
    pub image_urls: Vec<String>,
}

/// Counters for assertions.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SimStats {
    pub client_calls: u64,
    pub mints: u64,
    pub triggers: Vec<TriggerRecord>,
    pub ws_opened: u64,
    pub ws_open_now: u64,
    /// Sockets the client closed (or dropped) before the turn finished.
    pub ws_closed_early: u64,
    /// EngineLabs calls refused for a missing, forged or expired bearer JWT.
    pub rejected_jwts: u64,
    /// Triggers refused with 413 because the prompt exceeded `SimConfig::max_prompt_bytes`.
    pub prompts_too_large: u64,
    /// Successful CLI refreshes (`POST /oauth/token`), by user id.
    pub cli_refreshes: std::collections::BTreeMap<String, u64>,
    /// CLI refreshes refused by `Faults::cli_refresh_refused`.
    pub cli_refused_refreshes: u64,
    /// CLI calls refused for a missing, unknown or expired access token.
    pub cli_rejected_tokens: u64,
    /// Every CLI completion request, in order.
    pub cli_completions: Vec<CliCompletionRecord>,
    /// `DELETE /engine-agent/chat-histories/{id}` calls that deleted something.
    pub deletions: u64,
    /// `POST /projects/create-hosted` calls.
    pub projects: u64,
    /// `POST /engine-agent/offers` calls.
    pub offers: u64,
    /// Accepted `PATCH /teams/preferred-model` calls.
    pub model_switches: u64,
    /// Accepted `POST /images/presign` calls.
    pub presigns: u64,
    /// Completed image PUTs.
    pub uploads: u64,
    /// Image PUTs that carried an `Authorization` header (the JWT must not go to the bucket).
    pub leaked_auth_on_upload: u64,
    /// The last client each surface saw (`clerk`, `engine`, `websocket`, `upload`): what the
    /// proxy's transport presents itself as.
    pub clients: std::collections::BTreeMap<String, SeenClient>,
}

/// How a caller presented itself: the headers a bot check reads first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeenClient {
    pub user_agent: Option<String>,
    pub sec_ch_ua: Option<String>,
    pub sec_fetch_mode: Option<String>,
    pub sec_fetch_site: Option<String>,
    pub origin: Option<String>,
}
