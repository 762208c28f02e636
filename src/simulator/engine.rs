//! The simulated EngineLabs REST API (protocol notes §4): bearer-JWT checks, the model catalogue,
//! the Gen-2 setup calls, the chat trigger of both generations, billing, deletion, current user.
//!
//! Errors are `{"message": …}` like the NestJS backend the captures describe.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::TriggerRecord;
use super::catalogue::{CATALOGUE, find_model};
use super::respond::{authorize, message, not_found_route, parse_body};
use super::state::{Generation, History, SimState};
use super::turn::start_turn;
use super::util::{lock, random_alnum};

/// `GET /chat/adapters` (Gen-2).
pub(crate) async fn adapters(State(st): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    if !st.cfg.gen2 {
        return not_found_route();
    }
    if let Err(r) = authorize(&st, &headers) {
        return *r;
    }
    let list: Vec<Value> = CATALOGUE
        .iter()
        .map(|m| {
            json!({
                "key": m.key, "model": m.model, "engineAgentKey": m.engine_agent_key,
                "provider": m.provider, "minimumTier": m.minimum_tier, "enabled": m.enabled,
                "usageMultiplier": m.usage_multiplier, "supportsImages": m.supports_images,
            })
        })
        .collect();
    axum::Json(json!({"chatAdapters": list})).into_response()
}

/// `PATCH /teams/preferred-model` (Gen-2): stores the catalogue key on the account.
pub(crate) async fn preferred_model(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !st.cfg.gen2 {
        return not_found_route();
    }
    let user = match authorize(&st, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(key) = body.get("modelKey").and_then(Value::as_str) else {
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "body must have required property modelKey",
        );
    };
    let Some(model) = find_model(key) else {
        return message(StatusCode::BAD_REQUEST, "Unknown model");
    };
    if !model.enabled || model.minimum_tier > 0 {
        return message(StatusCode::BAD_REQUEST, "Model not available for your plan");
    }
    if let Some(acc) = lock(&st.inner).accounts.get_mut(&user) {
        acc.preferred_model = Some(model.key.to_owned());
    }
    lock(&st.stats).model_switches += 1;
    axum::Json(json!({})).into_response()
}

/// `POST /projects/create-hosted` (Gen-2): the project id becomes a chat history of the user.
pub(crate) async fn create_hosted(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !st.cfg.gen2 {
        return not_found_route();
    }
    let user = match authorize(&st, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(name) = body.get("projectName").and_then(Value::as_str) else {
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "body must have required property projectName",
        );
    };
    let project_id = uuid::Uuid::new_v4().to_string();
    let workspace_id = uuid::Uuid::new_v4().to_string();
    {
        let mut inner = lock(&st.inner);
        let org = inner
            .accounts
            .get(&user)
            .map(|a| a.org_id.clone())
            .unwrap_or_default();
        let hist = History::new(user, org, Generation::Gen2, Some(workspace_id.clone()));
        inner.histories.insert(project_id.clone(), Arc::new(hist));
    }
    lock(&st.stats).projects += 1;
    let body = json!({
        "message": "Project created",
        "projectId": project_id,
        "projectShortCode": random_alnum(8).to_lowercase(),
        "workspaceId": workspace_id,
        "workspaceName": format!("{name}-ws"),
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `POST /engine-agent/offers` (Gen-2): no promos here.
pub(crate) async fn offers(State(st): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    if !st.cfg.gen2 {
        return not_found_route();
    }
    if let Err(r) = authorize(&st, &headers) {
        return *r;
    }
    lock(&st.stats).offers += 1;
    axum::Json(json!({"offers": []})).into_response()
}

/// Takes one use of the `trigger_status` fault, if armed for this user, and returns its status.
/// A count of 0 means "until cleared". Both doors start a turn through it (the web trigger and
/// the CLI's `/chat/completions`), each answering in its own error shape.
pub(crate) fn take_trigger_fault(st: &SimState, user: &str) -> Option<StatusCode> {
    let mut f = lock(&st.faults);
    let status = f.trigger_status?;
    if f.trigger_status_user.as_deref().is_some_and(|u| u != user) {
        return None;
    }
    if f.trigger_status_count > 0 {
        f.trigger_status_count -= 1;
        if f.trigger_status_count == 0 {
            f.trigger_status = None;
        }
    }
    Some(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
}

/// The web trigger's answer to an armed `trigger_status` fault (429 adds `Retry-After: 1`).
fn trigger_fault(st: &SimState, user: &str) -> Option<Response> {
    let code = take_trigger_fault(st, user)?;
    let mut resp = message(code, "Simulated trigger failure");
    if code == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Some(resp)
}

/// The 413 cto.new answers for a prompt above the size limit (counted), if `prompt` is one.
fn too_large(st: &SimState, prompt: &str) -> Option<Response> {
    if prompt.len() <= st.cfg.max_prompt_bytes {
        return None;
    }
    lock(&st.stats).prompts_too_large += 1;
    Some(message(StatusCode::PAYLOAD_TOO_LARGE, "Message too large"))
}

/// `POST /engine-agent/chat`: Gen-1 when `adapterName` is present, Gen-2 otherwise.
pub(crate) async fn trigger(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match authorize(&st, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if let Some(resp) = trigger_fault(&st, &user) {
        return resp;
    }
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (Some(raw_prompt), Some(hid)) = (
        body.get("prompt").and_then(Value::as_str),
        body.get("chatHistoryId").and_then(Value::as_str),
    ) else {
        return message(
            StatusCode::BAD_REQUEST,
            "prompt and chatHistoryId are required",
        );
    };
    let adapter = body.get("adapterName").and_then(Value::as_str);
    let faults = lock(&st.faults).clone();
    let (generation, model, prompt, hist) = if let Some(adapter) = adapter {
        if !st.cfg.gen1 {
            return message(StatusCode::BAD_REQUEST, "adapterName is not supported");
        }
        let Some(m) = find_model(adapter) else {
            return message(StatusCode::BAD_REQUEST, "Unknown adapterName");
        };
        if uuid::Uuid::parse_str(hid).is_err() {
            return message(StatusCode::BAD_REQUEST, "chatHistoryId must be a UUID");
        }
        if let Some(resp) = too_large(&st, raw_prompt) {
            return resp;
        }
        let mut inner = lock(&st.inner);
        let org = inner
            .accounts
            .get(&user)
            .map(|a| a.org_id.clone())
            .unwrap_or_default();
        let hist = inner
            .histories
            .entry(hid.to_owned())
            .or_insert_with(|| Arc::new(History::new(user.clone(), org, Generation::Gen1, None)))
            .clone();
        if hist.user_id != user {
            return message(StatusCode::FORBIDDEN, "Forbidden");
        }
        if let Some(acc) = inner.accounts.get_mut(&user) {
            acc.daily_usage += m.usage_multiplier;
        }
        ("gen1", adapter.to_owned(), raw_prompt.to_owned(), hist)
    } else {
        let encoded = body.get("encoded").and_then(Value::as_bool) == Some(true);
        let prompt = if encoded {
            match STANDARD
                .decode(raw_prompt)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(p) => p,
                None => return message(StatusCode::BAD_REQUEST, "prompt is not valid base64"),
            }
        } else {
            raw_prompt.to_owned()
        };
        if let Some(resp) = too_large(&st, &prompt) {
            return resp;
        }
        let mut inner = lock(&st.inner);
        let Some(hist) = inner.histories.get(hid).cloned() else {
            return message(StatusCode::NOT_FOUND, "Chat history not found");
        };
        if hist.user_id != user {
            return message(StatusCode::FORBIDDEN, "Forbidden");
        }
        let Some(acc) = inner.accounts.get_mut(&user) else {
            return message(StatusCode::UNAUTHORIZED, "Unauthorized");
        };
        let Some(model) = acc.preferred_model.clone() else {
            return message(
                StatusCode::BAD_REQUEST,
                "No preferred model set for the team",
            );
        };
        acc.daily_usage += find_model(&model).map_or(1, |m| m.usage_multiplier);
        ("gen2", model, prompt, hist)
    };
    let image_urls: Vec<String> = match body.get("imageUrls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(urls)) => urls
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => return message(StatusCode::BAD_REQUEST, "imageUrls must be an array"),
    };
    if !image_urls.is_empty() {
        if generation == "gen1" || !find_model(&model).is_some_and(|m| m.supports_images) {
            return message(
                StatusCode::BAD_REQUEST,
                "This model does not support images",
            );
        }
        if image_urls
            .iter()
            .any(|u| super::images::uploaded(&st, u).is_none())
        {
            return message(StatusCode::BAD_REQUEST, "Unknown image URL");
        }
    }
    let turn = start_turn(&st, &hist, prompt.clone(), &faults);
    lock(&st.stats).triggers.push(TriggerRecord {
        generation,
        user_id: user,
        chat_history_id: hid.to_owned(),
        model,
        prompt,
        turn,
        image_urls,
    });
    if generation == "gen1" {
        axum::Json(json!({})).into_response()
    } else {
        StatusCode::ACCEPTED.into_response()
    }
}

/// `GET /billing` (the 2026 shape).
pub(crate) async fn billing(State(st): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let user = match authorize(&st, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let used = lock(&st.inner)
        .accounts
        .get(&user)
        .map_or(0, |a| a.daily_usage);
    axum::Json(json!({
        "tier": "free", "dailyUsage": used, "dailyLimit": 300, "weeklyLimit": 900,
        "hasReachedLimit": false, "taskConcurrencyLimit": 2,
    }))
    .into_response()
}

/// `DELETE /engine-agent/chat-histories/{id}`.
pub(crate) async fn delete_history(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match authorize(&st, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let mut inner = lock(&st.inner);
    match inner.histories.get(&id) {
        None => return message(StatusCode::NOT_FOUND, "Chat history not found"),
        Some(h) if h.user_id != user => return message(StatusCode::FORBIDDEN, "Forbidden"),
        Some(_) => {}
    }
    inner.histories.remove(&id);
    drop(inner);
    lock(&st.stats).deletions += 1;
    axum::Json(json!({})).into_response()
}

/// `GET /current-user`.
pub(crate) async fn current_user(State(st): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let user = match authorize(&st, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let org = lock(&st.inner)
        .accounts
        .get(&user)
        .map(|a| a.org_id.clone())
        .unwrap_or_default();
    axum::Json(json!({"currentUser": {"id": user, "team": {"id": org}}})).into_response()
}
