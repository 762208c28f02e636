//! TODO
use axum::Router;
#[derive(Clone)]
pub struct AppState;
pub fn app(_state: AppState) -> Router {
    Router::new()
}
