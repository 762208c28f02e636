//! Images sent with a turn (Gen-2 only, protocol notes §4.2 and §4.8): what the API surfaces
//! hand over ([`ImageSource`]), how they become bytes ([`load`], with the limits checked before
//! any byte is fetched or uploaded), and the browser's upload flow:
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

use super::transport::{Request, Transport};
use super::trigger::Engine;
use super::{UpstreamConfig, UpstreamError, http};

/// At most this many images per request.
pub const MAX_IMAGES: usize = 4;
/// The media types the browser uploads.
pub const MEDIA_TYPES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];

pub const CALL_PRESIGN: &str = "POST /images/presign";
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
    #[error("image {index}: {detail}")]
    Fetch { index: usize, detail: String },
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
                Some(ImageData {
                    media_type,
                    bytes: Bytes::from(bytes),
                })
            }
            ImageSource::Url(url) => {
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
    Ok(ImageData {
        media_type,
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
        call: CALL_PRESIGN,
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
            .call(
                CALL_PRESIGN,
                ::http::Method::POST,
                "/images/presign",
                Some(json!({ "images": list })),
            )
            .await?;
        let body: Value =
            serde_json::from_str(&reply.body).map_err(|_| UpstreamError::Protocol {
                call: CALL_PRESIGN,
                detail: format!("the answer is not JSON: {}", http::truncate(&reply.body)),
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
            body: http::truncate(&reply.body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_and_plain_urls() {
        assert_eq!(
            ImageSource::from_url("data:image/PNG;base64,AAEC"),
            ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAEC".into()
            }
        );
        assert_eq!(
            ImageSource::from_url("https://x/y.png"),
            ImageSource::Url("https://x/y.png".into())
        );
    }

    #[tokio::test]
    async fn limits_are_checked_before_any_fetch() {
        let http = Transport::new(&UpstreamConfig::cto_new()).expect("transport");
        let png = |data: &str| ImageSource::Base64 {
            media_type: "image/png".into(),
            data: data.into(),
        };
        let five = vec![png("AAEC"); 5];
        assert_eq!(load(five, 10, &http).await, Err(ImageError::TooMany(5)));
        let big = png(&STANDARD.encode([0u8; 11]));
        assert!(matches!(
            load(vec![big], 10, &http).await,
            Err(ImageError::TooLarge { index: 0, .. })
        ));
        let svg = ImageSource::Base64 {
            media_type: "image/svg+xml".into(),
            data: "AAEC".into(),
        };
        assert!(matches!(
            load(vec![svg], 10, &http).await,
            Err(ImageError::MediaType { .. })
        ));
        assert_eq!(
            load(vec![png("@@")], 10, &http).await,
            Err(ImageError::Base64(0))
        );
        // The inline check fails before the (unreachable) URL is fetched.
        let url = ImageSource::Url("https://127.0.0.1:1/x.png".into());
        assert!(matches!(
            load(vec![url, png("@@")], 10, &http).await,
            Err(ImageError::Base64(1))
        ));
        let ok = load(vec![png("AAEC")], 10, &http).await.expect("ok");
        assert_eq!(ok[0].bytes.as_ref(), [0u8, 1, 2]);
    }

    /// A local server for [`fetch`] (the https-only rule lives in [`load`], so plain HTTP on
    /// loopback exercises the same download path, through whichever transport is built).
    async fn image_server() -> String {
        use axum::body::Body;
        use axum::http::header::CONTENT_TYPE;
        use axum::routing::get;
        let png = |n: usize| ([(CONTENT_TYPE, "image/png")], vec![7u8; n]);
        let app = axum::Router::new()
            .route("/ok.png", get(move || async move { png(100) }))
            .route("/announced.png", get(move || async move { png(2000) }))
            .route(
                "/streamed.png",
                get(|| async {
                    // Chunked, no Content-Length: only counting stops it.
                    let chunks = futures_util::stream::iter(
                        (0..30).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 100]))),
                    );
                    ([(CONTENT_TYPE, "image/png")], Body::from_stream(chunks))
                }),
            )
            .route(
                "/page.html",
                get(|| async { ([(CONTENT_TYPE, "text/html")], "<html>") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        base
    }

    #[tokio::test]
    async fn downloads_stop_at_the_limit_and_check_the_type() {
        let base = image_server().await;
        let mut cfg = UpstreamConfig::cto_new();
        cfg.allow_private_image_urls = true;
        let http = Transport::new(&cfg).expect("transport");
        let got = fetch(&http, 0, &format!("{base}/ok.png"), 1000)
            .await
            .expect("a small png");
        assert_eq!(
            (got.media_type.as_str(), got.bytes.len()),
            ("image/png", 100)
        );
        for path in ["announced.png", "streamed.png"] {
            assert_eq!(
                fetch(&http, 2, &format!("{base}/{path}"), 1000).await,
                Err(ImageError::TooLarge {
                    index: 2,
                    max: 1000
                }),
                "{path}"
            );
        }
        assert!(matches!(
            fetch(&http, 0, &format!("{base}/page.html"), 1000).await,
            Err(ImageError::MediaType { .. })
        ));
        match fetch(&http, 1, &format!("{base}/missing.png"), 1000).await {
            Err(ImageError::Fetch { index: 1, detail }) => {
                assert!(detail.contains("404"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// By default a client cannot point the downloader at the proxy's own network: neither by
    /// address nor by a name that resolves there. Nothing is fetched.
    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed() {
        let base = image_server().await;
        let http = Transport::new(&UpstreamConfig::cto_new()).expect("transport");
        let port = base.rsplit(':').next().expect("port");
        for url in [
            format!("{base}/ok.png"),
            format!("http://localhost:{port}/ok.png"),
            format!("http://[::1]:{port}/ok.png"),
        ] {
            match fetch(&http, 0, &url, 1000).await {
                Err(ImageError::Fetch { detail, .. }) => {
                    assert!(
                        detail.contains("ALLOW_PRIVATE_IMAGE_URLS"),
                        "{url}: {detail}"
                    )
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn presign_replies_are_read_liberally() {
        let a = parse_presign(
            &json!({"images":[{"uploadUrl":"https://s3/a?sig=1","publicUrl":"https://cdn/a.png"}]}),
            1,
        )
        .expect("shape a");
        assert_eq!(a[0].final_url, "https://cdn/a.png");
        let b = parse_presign(&json!([{"presignedUrl":"https://s3/b.png?X-Amz=1"}]), 1)
            .expect("shape b");
        assert_eq!(b[0].final_url, "https://s3/b.png");
        let c = parse_presign(&json!({"urls":[{"url":"u","cdnUrl":"c"}]}), 1).expect("shape c");
        assert_eq!(c[0].upload_url, "u");
        assert!(parse_presign(&json!({"images":[]}), 1).is_err());
        assert!(parse_presign(&json!({"ok":true}), 1).is_err());
    }
}
