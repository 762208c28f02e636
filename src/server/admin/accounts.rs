//! `/admin/api/accounts`: what the pool holds and the operations on it. Answers carry the
//! cookie-free [`AccountView`]; no cookie value is ever sent back.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::pool::entry::AccountView;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{JsonBody, Path};

/// The longest account label: a name for a list row and a log field, not a document.
pub const MAX_LABEL_CHARS: usize = 64;

/// A label is shown on the admin page and written to logs: short, and nothing in it that could
/// break a log line or reorder the text around it.
fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.chars().count() <= MAX_LABEL_CHARS
        && !label.chars().any(crate::logging::unprintable)
}

/// What an admin pastes: a browser session's cookie, or a `cto login`'s refresh token.
enum Secret<'a> {
    Cookie(&'a str),
    Cli(&'a str),
}

/// `GET /admin/api/accounts`.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let pool = state.pool();
    Json(json!({"object": "list", "data": pool.snapshot(), "queued": pool.waiting()}))
}

/// `GET /admin/api/accounts/{id}`.
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(state.pool().view(&id)?))
}

/// `POST /admin/api/accounts` `{"cookie": "...", "label": "..."}` (a browser session) or
/// `{"refresh_token": "...", "label": "..."}` (a `cto login`: the refresh token, or the whole
/// `~/.cto/credentials` JSON): validated at once (discovery and a JWT mint, or one refresh);
/// answers the account or why its secret is no good.
pub async fn add(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<AccountView>, ApiError> {
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|c| !c.is_empty())
    };
    let secret = match (
        field("cookie"),
        field("refresh_token").or_else(|| field("credentials")),
    ) {
        (Some(c), _) => Secret::Cookie(c),
        (None, Some(t)) => Secret::Cli(t),
        (None, None) => {
            return Err(ApiError::bad_request(
                "`cookie` (the cookie of a logged-in cto.new browser session) or `refresh_token` (from `cto login`: the refresh token, or the JSON of ~/.cto/credentials) is required",
                Some("cookie"),
            ));
        }
    };
    let label = match body.get("label") {
        None | Some(Value::Null) => format!("admin-{}", state.pool().len() + 1),
        Some(Value::String(l)) if is_label(l.trim()) => l.trim().to_string(),
        Some(_) => {
            return Err(ApiError::bad_request(
                format!(
                    "`label` must be a string of 1 to {MAX_LABEL_CHARS} characters without control characters"
                ),
                Some("label"),
            ));
        }
    };
    let relay = state.relay();
    let view = match secret {
        Secret::Cookie(cookie) => {
            state
                .pool()
                .add(&relay.engine, &relay.store, &label, cookie)
                .await?
        }
        Secret::Cli(token) => {
            let view = state
                .pool()
                .add_cli(&relay.cli, &relay.store, &label, token)
                .await?;
            // Its door's models join the catalogue now, not at the next refresh.
            state.catalog().refresh(state.relay()).await;
            view
        }
    };
    tracing::info!(label = %view.label, id = %view.id, "account added through the admin API");
    Ok(Json(view))
}

/// `DELETE /admin/api/accounts/{id}`.
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state.pool().remove(state.store(), &id).await?;
    tracing::info!(label = %view.label, id = %view.id, "account removed through the admin API");
    Ok(Json(json!({"deleted": true, "account": view})))
}

/// `POST /admin/api/accounts/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(
        state
            .pool()
            .set_disabled(&state.relay().store, &id, true)
            .await?,
    ))
}

/// `POST /admin/api/accounts/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(
        state
            .pool()
            .set_disabled(&state.relay().store, &id, false)
            .await?,
    ))
}

/// `POST /admin/api/accounts/{id}/check`: tests the cookie now and reads the quota.
pub async fn check(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(state.pool().check(&state.relay().engine, &id).await?))
}
