//! Tests of [`super`]: the limits and type checks of client images, downloads, presign replies.

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

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

#[tokio::test]
async fn limits_are_checked_before_any_fetch() {
    let http = Transport::new(&UpstreamConfig::cto_new()).expect("transport");
    let png = |data: &str| ImageSource::Base64 {
        media_type: "image/png".into(),
        data: data.into(),
    };
    let five = vec![png(&STANDARD.encode(PNG_MAGIC)); 5];
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
    let ok = load(vec![png(&STANDARD.encode(PNG_MAGIC))], 10, &http)
        .await
        .expect("ok");
    assert_eq!(ok[0].bytes.as_ref(), PNG_MAGIC);
}

#[test]
fn the_bytes_say_their_type() {
    assert_eq!(sniff(PNG_MAGIC), Some("image/png"));
    assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xdb]), Some("image/jpeg"));
    assert_eq!(sniff(b"GIF87a..."), Some("image/gif"));
    assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8L"), Some("image/webp"));
    assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
    assert_eq!(sniff(b"<svg"), None);
    assert_eq!(sniff(b""), None);
}

#[tokio::test]
async fn empty_mislabelled_and_non_base64_images_are_refused() {
    let http = Transport::new(&UpstreamConfig::cto_new()).expect("transport");
    let b64 = |media_type: &str, bytes: &[u8]| ImageSource::Base64 {
        media_type: media_type.into(),
        data: STANDARD.encode(bytes),
    };
    assert_eq!(
        load(vec![b64("image/png", b"")], 100, &http).await,
        Err(ImageError::Empty(0))
    );
    assert_eq!(
        load(vec![b64("image/png", b"GIF89a+")], 100, &http).await,
        Err(ImageError::Mismatch {
            index: 0,
            declared: "image/png".into(),
            actual: Some("image/gif")
        })
    );
    // `image/jpg` is read as jpeg, and jpeg bytes are jpeg.
    assert!(
        load(vec![b64("image/jpg", &[0xff, 0xd8, 0xff])], 100, &http)
            .await
            .is_ok()
    );
    let err = load(vec![b64("image/webp", &[1, 2, 3])], 100, &http)
        .await
        .expect_err("noise");
    assert!(
        err.to_string().contains("not a png, jpeg, webp or gif"),
        "{err}"
    );
    let raw = ImageSource::from_url("data:image/png,%89PNG");
    assert_eq!(
        load(vec![raw], 100, &http).await,
        Err(ImageError::NotBase64(0))
    );
}

/// A local server for [`fetch`] (the https-only rule lives in [`load`], so plain HTTP on
/// loopback exercises the same download path, through whichever transport is built).
async fn image_server() -> String {
    use axum::body::Body;
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    let png = |n: usize| {
        let mut body = PNG_MAGIC.to_vec();
        body.resize(n, 7);
        ([(CONTENT_TYPE, "image/png")], body)
    };
    let gif = |n: usize| {
        let mut body = b"GIF89a".to_vec();
        body.resize(n, 7);
        ([(CONTENT_TYPE, "image/png")], body)
    };
    let app = axum::Router::new()
        .route("/ok.png", get(move || async move { png(100) }))
        .route("/gif-as.png", get(move || async move { gif(100) }))
        .route(
            "/noise.png",
            get(|| async { ([(CONTENT_TYPE, "image/png")], vec![1u8; 50]) }),
        )
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
    // A server's label loses to the bytes; bytes that are no image are refused.
    let gif = fetch(&http, 0, &format!("{base}/gif-as.png"), 1000)
        .await
        .expect("a gif served as png");
    assert_eq!(gif.media_type, "image/gif");
    assert!(matches!(
        fetch(&http, 0, &format!("{base}/noise.png"), 1000).await,
        Err(ImageError::Mismatch { actual: None, .. })
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
    let b =
        parse_presign(&json!([{"presignedUrl":"https://s3/b.png?X-Amz=1"}]), 1).expect("shape b");
    assert_eq!(b[0].final_url, "https://s3/b.png");
    let c = parse_presign(&json!({"urls":[{"url":"u","cdnUrl":"c"}]}), 1).expect("shape c");
    assert_eq!(c[0].upload_url, "u");
    assert!(parse_presign(&json!({"images":[]}), 1).is_err());
    assert!(parse_presign(&json!({"ok":true}), 1).is_err());
}
