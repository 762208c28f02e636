//! `GET /v1/models` and `GET /v1/models/{id}`: the model catalogue in OpenAI's shape.
//!
//! Each model is listed once under its canonical name (the adapter key when the live list is
//! known), owned by its upstream provider; `MODEL_ALIASES` and the other names resolve but are
//! not listed, so a client's model picker shows no duplicates. The exception is the Claude
//! family names ([`Catalog::CLAUDE_ALIASES`]), listed after the models because Claude Code
//! discovers a gateway's models by keeping the ids that start with `claude`; each says in
//! `owned_by` which model it stands for.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::catalog::{Catalog, CatalogModel};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::Path;

/// A fixed creation time: the upstream does not say when a model appeared.
const CREATED: u64 = 1_760_000_000;

fn model_json(m: &CatalogModel) -> Value {
    json!({
        "id": m.id,
        "object": "model",
        "created": CREATED,
        "owned_by": m.provider.as_deref().unwrap_or("cto.new"),
    })
}

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    state.catalog().ensure_loaded(state.relay()).await;
    let catalog = state.catalog().snapshot();
    let mut data: Vec<Value> = catalog.models().iter().map(model_json).collect();
    for alias in Catalog::CLAUDE_ALIASES {
        let taken = catalog
            .models()
            .iter()
            .any(|m| m.id.eq_ignore_ascii_case(alias));
        if let (false, Some(target)) = (taken, catalog.find(alias)) {
            data.push(json!({"id": alias, "object": "model", "created": CREATED,
                "owned_by": format!("alias of {}", target.id)}));
        }
    }
    Json(json!({"object": "list", "data": data}))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.catalog().ensure_loaded(state.relay()).await;
    let catalog = state.catalog().snapshot();
    let model = catalog
        .find(&id)
        .ok_or_else(|| ApiError::ModelNotFound(id.clone()))?;
    Ok(Json(model_json(model)))
}
