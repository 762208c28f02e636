//! `GET /v1/models` and `GET /v1/models/{id}`: the configured catalogue in OpenAI's shape.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::server::AppState;
use crate::server::error::ApiError;

/// A fixed creation time: the upstream does not say when a model appeared.
const CREATED: u64 = 1_760_000_000;

fn model_json(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "cto.new"})
}

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .config()
        .models
        .iter()
        .map(|m| model_json(m))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let model = state.resolve_model(Some(&id))?;
    Ok(Json(model_json(&model)))
}
