//! The admin page's own endpoints under `/admin/api` (behind the same check as the account
//! routes: the admin key or a page session):
//! - `GET /admin/api/session`: whether the caller is logged in (the page's first call);
//! - `GET /admin/api/overview`: uptime, version, upstream protocol, store, account counts and
//!   the last minutes of traffic from [`crate::server::traffic`];
//! - `GET /admin/api/settings`: every setting in force, secrets replaced by `<redacted>`;
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

/// The configuration as JSON: every setting by its variable name, from the one redacted view
/// ([`crate::config::Config::settings`]: secrets are `<redacted>`), with the account labels and
/// the build's transport.
pub async fn settings(State(state): State<AppState>) -> Json<Value> {
    let c = state.config();
    let mut out: serde_json::Map<String, Value> = c
        .settings()
        .iter()
        .map(|(name, value)| ((*name).to_string(), json!(value)))
        .collect();
    out.insert(
        "accounts".into(),
        json!(
            c.accounts
                .iter()
                .map(|a| a.label.as_str())
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "transport".into(),
        json!(crate::upstream::transport::Transport::NAME),
    );
    Json(Value::Object(out))
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
