//! Images sent with a turn (Gen-2 only, protocol notes §4.2 and §4.8): what the API surfaces
//! hand over ([`ImageSource`]), how they become bytes ([`load`], with the limits checked before
//! any byte is fetched or uploaded, and the bytes checked to be the image type they claim, by
//! their magic number: [`sniff`]), and the browser's upload flow:
//! `POST /images/presign` -> one presigned PUT URL and one final URL per image -> `PUT` the
//! bytes -> the final URLs go into the trigger's `imageUrls`.
//!
//! The presign reply is unpublished, so [`parse_presign`] is liberal: the list may sit under
//! `images`, `uploads`, `presignedUrls`, `urls` or `data` (or be the whole body), and each entry
//! may call its PUT URL `uploadUrl`/`presignedUrl`/`putUrl`/`signedUrl`/`url` and its final URL
//! `publicUrl`/`finalUrl`/`cdnUrl`/`imageUrl`/`fileUrl`. Without a final URL, the PUT URL minus
//! its query string is used (a presigned S3 URL without its signature is the object's URL).
//!
//! The PUT carries no `Authorization`: a presigned URL is its own credential, and the JWT must
//! not leak to the storage host.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};

use super::engine::{Engine, EngineCall};
use super::transport::{Request, Transport};
use super::{UpstreamConfig, UpstreamError, answer};

/// At most this many images per request.
pub const MAX_IMAGES: usize = 4;
/// The media types the browser uploads.
pub const MEDIA_TYPES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];

pub const CALL_PUT: &str = "PUT presigned image";

/// An image as a client sent it, not yet checked or fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// Base64 bytes with their declared media type (a `data:` URL or an Anthropic base64 block).
    Base64 { media_type: String, data: String },
    /// An `https://` URL to fetch.
    Url(String),
}

impl ImageSource {
    /// A `data:image/png;base64,...` URL, or any other URL to fetch.
    pub fn from_url(url: &str) -> ImageSource {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((meta, data)) = rest.split_once(',')
            && let Some(media_type) = meta.strip_suffix(";base64")
        {
            return ImageSource::Base64 {
                media_type: media_type.to_ascii_lowercase(),
                data: data.to_string(),
            };
        }
        ImageSource::Url(url.to_string())
    }
}

/// Image bytes ready to upload.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageData {
    pub media_type: String,
    pub bytes: Bytes,
}

impl std::fmt::Debug for ImageData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ImageData({}, {} bytes)",
            self.media_type,
            self.bytes.len()
        )
    }
}

/// Why a client's image was refused (a 400 for the client).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("at most {MAX_IMAGES} images are accepted per request ({0} given)")]
    TooMany(usize),
    #[error("image {index} is larger than MAX_IMAGE_BYTES ({max} bytes)")]
    TooLarge { index: usize, max: usize },
    #[error("image {index} has media type `{media_type}`; expected one of png, jpeg, webp, gif")]
    MediaType { index: usize, media_type: String },
    #[error("image {0} is not valid base64")]
    Base64(usize),
    #[error("image {0} is empty: no bytes after `base64,`")]
    Empty(usize),
    #[error(
        "image {0} is a data: URL without `;base64`; send it as `data:image/png;base64,<bytes>` (png, jpeg, webp or gif)"
    )]
    NotBase64(usize),
    #[error("image {index} is declared `{declared}` but its bytes are {}", match .actual {
        Some(t) => format!("`{t}`"),
        None => "not a png, jpeg, webp or gif image".to_string(),
    })]
    Mismatch {
        index: usize,
        declared: String,
        actual: Option<&'static str>,
    },
    #[error("image {index}: {detail}")]
    Fetch { index: usize, detail: String },
}

/// The media type the bytes themselves say (their magic number), among [`MEDIA_TYPES`].
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn check_media_type(index: usize, media_type: &str) -> Result<String, ImageError> {
    let mt = media_type.trim().to_ascii_lowercase();
    let mt = if mt == "image/jpg" {
        "image/jpeg".to_string()
    } else {
        mt
    };
    if MEDIA_TYPES.contains(&mt.as_str()) {
        Ok(mt)
    } else {
        Err(ImageError::MediaType {
            index,
            media_type: media_type.to_string(),
        })
    }
}

/// Checks count, media types and sizes, decoding inline images and fetching URLs (through
/// `http`, reading no more than `max_bytes` of each). The count is checked first, inline
/// images before any fetch, so a bad request costs no network call.
pub async fn load(
    sources: Vec<ImageSource>,
    max_bytes: usize,
    http: &Transport,
) -> Result<Vec<ImageData>, ImageError> {
    if sources.len() > MAX_IMAGES {
        return Err(ImageError::TooMany(sources.len()));
    }
    let mut out: Vec<Option<ImageData>> = Vec::with_capacity(sources.len());
    for (index, s) in sources.iter().enumerate() {
        out.push(match s {
            ImageSource::Base64 { media_type, data } => {
                let media_type = check_media_type(index, media_type)?;
                let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                if data.len() / 4 * 3 > max_bytes + 2 {
                    return Err(ImageError::TooLarge {
                        index,
                        max: max_bytes,
                    });
                }
                let bytes = STANDARD
                    .decode(&data)
                    .map_err(|_| ImageError::Base64(index))?;
                if bytes.len() > max_bytes {
                    return Err(ImageError::TooLarge {
                        index,
                        max: max_bytes,
                    });
                }
                if bytes.is_empty() {
                    return Err(ImageError::Empty(index));
                }
                let actual = sniff(&bytes);
                if actual != Some(media_type.as_str()) {
                    return Err(ImageError::Mismatch {
                        index,
                        declared: media_type,
                        actual,
                    });
                }
                Some(ImageData {
                    media_type,
                    bytes: Bytes::from(bytes),
                })
            }
            ImageSource::Url(url) => {
                if url
                    .get(..5)
                    .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
                {
                    return Err(ImageError::NotBase64(index));
                }
                if !url.starts_with("https://") {
                    return Err(ImageError::Fetch {
                        index,
                        detail: "only https:// and data: URLs are accepted".into(),
                    });
                }
                None
            }
        });
    }
    let mut images = Vec::with_capacity(out.len());
    for (index, (slot, source)) in out.into_iter().zip(sources).enumerate() {
        match (slot, source) {
            (Some(img), _) => images.push(img),
            (None, ImageSource::Url(url)) => {
                images.push(fetch(http, index, &url, max_bytes).await?)
            }
            (None, ImageSource::Base64 { .. }) => {}
        }
    }
    Ok(images)
}

/// Downloads one image, stopping as soon as it exceeds `max_bytes`.
async fn fetch(
    http: &Transport,
    index: usize,
    url: &str,
    max_bytes: usize,
) -> Result<ImageData, ImageError> {
    let fail = |detail: String| ImageError::Fetch { index, detail };
    let mut resp = http
        .download(Request::get(url))
        .await
        .map_err(|e| fail(format!("could not fetch it: {e}")))?;
    if !(200..300).contains(&resp.status) {
        return Err(fail(format!("fetching it answered HTTP {}", resp.status)));
    }
    let media_type = resp
        .headers
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let media_type = check_media_type(index, &media_type)?;
    if resp
        .content_length()
        .is_some_and(|n| n as usize > max_bytes)
    {
        return Err(ImageError::TooLarge {
            index,
            max: max_bytes,
        });
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| fail(format!("reading it failed: {e}")))?
    {
        if buf.len() + chunk.len() > max_bytes {
            return Err(ImageError::TooLarge {
                index,
                max: max_bytes,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    // The bytes decide: a server that labels a GIF `image/png` is not the client's fault, but
    // what is uploaded must be what its type says, and something must be there.
    let Some(media_type) = sniff(&buf) else {
        return Err(ImageError::Mismatch {
            index,
            declared: media_type,
            actual: None,
        });
    };
    Ok(ImageData {
        media_type: media_type.to_string(),
        bytes: Bytes::from(buf),
    })
}

/// One upload slot from `POST /images/presign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub upload_url: String,
    pub final_url: String,
}

fn first_str<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| v.get(*n).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// Reads a presign reply (see the module doc for the shapes taken); `expected` slots.
pub fn parse_presign(body: &Value, expected: usize) -> Result<Vec<Presigned>, UpstreamError> {
    let protocol = |detail: String| UpstreamError::Protocol {
        call: EngineCall::Presign.label(),
        detail,
    };
    let list = ["images", "uploads", "presignedUrls", "urls", "data"]
        .iter()
        .find_map(|k| body.get(*k))
        .or(Some(body))
        .and_then(Value::as_array)
        .ok_or_else(|| protocol("no list of upload URLs in the answer".into()))?;
    let slots: Vec<Presigned> = list
        .iter()
        .filter_map(|e| {
            let upload = first_str(
                e,
                &["uploadUrl", "presignedUrl", "putUrl", "signedUrl", "url"],
            )?;
            let final_url = first_str(
                e,
                &["publicUrl", "finalUrl", "cdnUrl", "imageUrl", "fileUrl"],
            )
            .map(str::to_string)
            .unwrap_or_else(|| upload.split('?').next().unwrap_or(upload).to_string());
            Some(Presigned {
                upload_url: upload.to_string(),
                final_url,
            })
        })
        .collect();
    if slots.len() != expected {
        return Err(protocol(format!(
            "{} upload URLs for {expected} images",
            slots.len()
        )));
    }
    Ok(slots)
}

impl Engine<'_> {
    /// `POST /images/presign` for these images.
    pub async fn presign(&self, images: &[ImageData]) -> Result<Vec<Presigned>, UpstreamError> {
        let list: Vec<Value> = images
            .iter()
            .map(|i| json!({"mediaType": i.media_type, "contentLength": i.bytes.len()}))
            .collect();
        let reply = self
            .call(EngineCall::Presign, None, Some(json!({ "images": list })))
            .await?;
        let body: Value =
            serde_json::from_str(&reply.body).map_err(|_| UpstreamError::Protocol {
                call: EngineCall::Presign.label(),
                detail: format!("the answer is not JSON: {}", answer::truncate(&reply.body)),
            })?;
        parse_presign(&body, images.len())
    }
}

/// PUTs one image to its presigned URL (no JWT; see the module doc).
pub async fn put(
    client: &Transport,
    cfg: &UpstreamConfig,
    slot: &Presigned,
    image: &ImageData,
) -> Result<(), UpstreamError> {
    let req = Request::new(::http::Method::PUT, &slot.upload_url)
        .timeout(cfg.request_timeout)
        .body(&image.media_type, image.bytes.clone());
    let reply = client.send(CALL_PUT, req).await?;
    if reply.is_success() {
        Ok(())
    } else {
        Err(UpstreamError::Status {
            call: CALL_PUT,
            status: reply.status,
            body: answer::truncate(&reply.body),
        })
    }
}

#[cfg(test)]
#[path = "images_tests.rs"]
mod tests;
