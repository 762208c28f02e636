//! The admin page's own endpoints under `/admin/api` (behind the same check as the account
//! routes: the admin key or a page session):
//! - `GET /admin/api/session`: whether the caller is logged in (the page's first call);
//! - `GET /admin/api/overview`: uptime, version, upstream protocol, store, account counts and
//!   the last minutes of traffic from [`crate::server::traffic`];
//! - `GET /admin/api/settings`: the effective configuration, secrets replaced by
//!   `<redacted>` or counts;
//! - `GET /admin/api/models`, `POST /admin/api/chat`: the playground. They run the `/v1`
//!   handlers themselves as the fixed client `admin-playground`, so the page needs no client
//!   key and its conversations are scoped apart from every client's.

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::pool::HealthState;
use crate::server::AppState;
use crate::server::auth::ClientId;
use crate::server::chat_body::ChatBody;
use crate::server::error::ApiError;
use crate::server::extract::Query;
use crate::server::openai;
use crate::server::traffic as stats;

/// The client id of playground turns (scopes their conversation fingerprints).
pub const PLAYGROUND_CLIENT: &str = "admin-playground";

const REDACTED: &str = "<redacted>";

pub async fn session() -> Json<Value> {
    Json(json!({"authenticated": true}))
}

#[derive(serde::Deserialize)]
pub struct OverviewQuery {
    /// Minutes of history (1 to 15, default 5).
    minutes: Option<u64>,
}

pub async fn overview(
    State(state): State<AppState>,
    Query(q): Query<OverviewQuery>,
) -> Json<Value> {
    let accounts = state.pool().snapshot();
    let count = |s: HealthState| accounts.iter().filter(|a| a.state == s).count();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": stats::uptime().as_secs(),
        "upstream_protocol": state.generation_label(),
        "store_backend": state.store().backend(),
        "accounts": {
            "total": accounts.len(),
            "active": count(HealthState::Active),
            "cooling": count(HealthState::Cooling),
            "dead": count(HealthState::Dead),
            "disabled": count(HealthState::Disabled),
            "in_flight": accounts.iter().map(|a| a.in_flight).sum::<usize>(),
        },
        "queued": state.pool().waiting(),
        // Extra upstream turns sent for prompts over the budget (each costs credits).
        "context_turns": crate::relay::context::sent_total(),
        "traffic": stats::window(q.minutes.unwrap_or(5)),
    }))
}

/// The configuration as JSON: every setting, with keys and cookies replaced by `<redacted>`
/// or by how many there are.
pub async fn settings(State(state): State<AppState>) -> Json<Value> {
    let c = state.config();
    let p = &c.pool;
    let u = &c.upstream;
    Json(json!({
        "listen": c.listen.to_string(),
        "api_keys": format!("{} configured, {REDACTED}", c.api_keys.len()),
        "admin_key": c.admin_key.as_ref().map(|_| REDACTED),
        "clerk_cookie": c.clerk_cookie.as_ref().map(|_| REDACTED),
        "accounts": c.accounts.iter().map(|a| json!({"label": a.label, "cookie": REDACTED})).collect::<Vec<_>>(),
        "models": c.models,
        "default_model": c.default_model,
        "reasoning": format!("{:?}", c.reasoning),
        "max_body_bytes": c.max_body_bytes,
        "cors_origins": match &c.cors {
            crate::server::cors::CorsOrigins::Off => json!(null),
            crate::server::cors::CorsOrigins::Any => json!("*"),
            crate::server::cors::CorsOrigins::List(list) => json!(list.iter().filter_map(|o| o.to_str().ok()).collect::<Vec<_>>()),
        },
        "store": c.store_label(),
        "conversation_ttl_secs": c.conversation_ttl.as_secs(),
        "max_conversations": c.max_conversations,
        "upstream_cleanup": c.upstream_cleanup,
        "log_format": format!("{:?}", c.log_format),
        "upstream": {
            "clerk_base_url": u.clerk_base_url,
            "engine_base_url": u.engine_base_url,
            "ws_base_url": u.ws_base_url,
            "protocol": format!("{:?}", u.protocol),
            "request_timeout_secs": u.request_timeout.as_secs_f64(),
            "stream_idle_timeout_secs": u.idle_timeout.as_secs_f64(),
            // Display leaves the proxy's credentials out.
            "proxy": u.proxy.as_ref().map(ToString::to_string),
            "transport": crate::upstream::transport::Transport::NAME,
        },
        "pool": {
            "account_concurrency": p.concurrency,
            "queue_timeout_secs": p.queue_timeout.as_secs_f64(),
            "max_queue": p.max_queue,
            "account_cooldown_secs": p.cooldown.as_secs_f64(),
            "dead_recheck_interval_secs": p.dead_recheck.as_secs_f64(),
            "quota_check_interval_secs": p.quota_check.as_secs_f64(),
            "retry_attempts": p.attempts,
            "breaker_failures": p.breaker.failures,
            "breaker_open_secs": p.breaker.open_for.as_secs_f64(),
        },
    }))
}

/// `GET /admin/api/models`: the `/v1/models` handler.
pub async fn models(state: State<AppState>) -> Json<Value> {
    openai::models::list(state).await
}

/// `POST /admin/api/chat`: the `/v1/chat/completions` handler as `admin-playground`.
pub async fn chat(state: State<AppState>, body: ChatBody) -> Result<Response, ApiError> {
    let client = Extension(ClientId(PLAYGROUND_CLIENT.to_string()));
    openai::chat::completions(state, client, body).await
}
