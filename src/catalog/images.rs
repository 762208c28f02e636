//! Whether a request's images may go to its model (the adapter's `supportsImages`, Gen-2
//! only), and loading them within the limits, all before anything is uploaded.

use super::AppState;
use crate::server::error::ApiError;
use crate::upstream::Generation;
use crate::upstream::images::{self, ImageData, ImageSource};

/// Checks and loads a request's images for `model` (a canonical name): a 400 saying why when
/// the protocol generation or the model cannot take images, or an image breaks the limits
/// (count, media type, `MAX_IMAGE_BYTES`). All of this happens before any upload.
pub async fn prepare_images(
    state: &AppState,
    model: &str,
    sources: Vec<ImageSource>,
) -> Result<Vec<ImageData>, ApiError> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let refuse = |msg: String| ApiError::bad_request(msg, Some("messages"));
    let catalog = state.catalog().snapshot();
    if state.relay().engine.generation() == Some(Generation::Gen1) || !catalog.is_live() {
        return Err(refuse(
            "images need cto.new's Gen-2 protocol (its image upload and live model list); this proxy is speaking Gen-1 or has no model list from cto.new".into(),
        ));
    }
    if catalog.find(model).and_then(|m| m.supports_images) != Some(true) {
        let with_images: Vec<&str> = catalog
            .models()
            .iter()
            .filter(|m| m.supports_images == Some(true))
            .map(|m| m.id.as_str())
            .take(3)
            .collect();
        return Err(refuse(format!(
            "model `{model}` does not accept images; models that do: {}",
            if with_images.is_empty() {
                "none on offer".to_string()
            } else {
                with_images.join(", ")
            }
        )));
    }
    images::load(
        sources,
        state.config().catalog.max_image_bytes,
        state.relay().engine.http(),
    )
    .await
    .map_err(|e| refuse(e.to_string()))
}
