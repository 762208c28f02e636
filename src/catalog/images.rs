//! Whether a request's images may go to its model (the adapter's `supportsImages`, Gen-2
//! only), and loading them within the limits, all before anything is uploaded.

use super::ModelCatalog;
use crate::relay::Relay;
use crate::upstream::Generation;
use crate::upstream::images::{self, ImageData, ImageSource};

/// Why a request's images cannot go upstream; each is the client's to fix (the server answers
/// 400 about `messages`).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "images need cto.new's Gen-2 protocol (its image upload and live model list); this proxy is speaking Gen-1 or has no model list from cto.new"
    )]
    NeedsGen2,
    #[error("model `{model}` does not accept images; models that do: {with_images}")]
    ModelTakesNone { model: String, with_images: String },
    /// An image broke the limits (count, media type, `MAX_IMAGE_BYTES`) or could not be read.
    #[error("{0}")]
    Load(String),
}

/// Checks and loads a request's images for `model` (a canonical name): an error saying why
/// when the protocol generation or the model cannot take images, or an image breaks the limits
/// (count, media type, `MAX_IMAGE_BYTES`). All of this happens before any upload.
pub async fn prepare_images(
    catalog: &ModelCatalog,
    relay: &Relay,
    model: &str,
    sources: Vec<ImageSource>,
) -> Result<Vec<ImageData>, ImageError> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let snapshot = catalog.snapshot();
    if relay.engine.generation() == Some(Generation::Gen1) || !snapshot.is_live() {
        return Err(ImageError::NeedsGen2);
    }
    if snapshot.find(model).and_then(|m| m.supports_images) != Some(true) {
        let with_images: Vec<&str> = snapshot
            .models()
            .iter()
            .filter(|m| m.supports_images == Some(true))
            .map(|m| m.id.as_str())
            .take(3)
            .collect();
        return Err(ImageError::ModelTakesNone {
            model: model.to_string(),
            with_images: if with_images.is_empty() {
                "none on offer".to_string()
            } else {
                with_images.join(", ")
            },
        });
    }
    images::load(
        sources,
        catalog.settings().max_image_bytes,
        relay.engine.http(),
    )
    .await
    .map_err(|e| ImageError::Load(e.to_string()))
}
