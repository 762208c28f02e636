//! Images end to end: parsed from both APIs, checked against the model and the limits, uploaded
//! through the simulator's presign + PUT flow, and sent as the Gen-2 trigger's `imageUrls`.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::start;
use enginelabs_2api::simulator::SimConfig;
use serde_json::{Value, json};

/// `n` bytes that start like a PNG file (the proxy checks the declared type against the first
/// bytes; nothing decodes the rest).
fn image_bytes(n: usize) -> Vec<u8> {
    typed_bytes(b"\x89PNG\r\n\x1a\n", n)
}

/// `n` bytes starting with `magic`, then filler.
fn typed_bytes(magic: &[u8], n: usize) -> Vec<u8> {
    let mut v = magic.to_vec();
    v.extend((v.len()..n).map(|i| (i * 7 % 251) as u8));
    v.truncate(n);
    v
}

const JPEG: &[u8] = b"\xff\xd8\xff\xe0";
const WEBP: &[u8] = b"RIFF\x10\x00\x00\x00WEBPVP8 ";
const GIF: &[u8] = b"GIF89a";

fn openai_body(model: &str, images: &[Vec<u8>]) -> Value {
    let mut content = vec![json!({"type": "text", "text": "What is in this picture?"})];
    for img in images {
        content.push(json!({"type": "image_url", "image_url": {
            "url": format!("data:image/png;base64,{}", STANDARD.encode(img)), "detail": "auto"}}));
    }
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn a_data_url_is_uploaded_and_its_final_url_sent_with_the_trigger() {
    let h = start(SimConfig::default(), |_| {}).await;
    let img = image_bytes(3000);
    let (status, v) = h
        .chat(openai_body("gpt-5.4", std::slice::from_ref(&img)))
        .await;
    assert_eq!(status, 200, "{v}");
    let stats = h.sim.stats();
    assert_eq!((stats.presigns, stats.uploads), (1, 1));
    assert_eq!(
        stats.leaked_auth_on_upload, 0,
        "no JWT on the presigned PUT"
    );
    let t = &stats.triggers[0];
    assert_eq!(t.model, "gpt_5_4");
    assert_eq!(t.image_urls.len(), 1);
    assert!(t.image_urls[0].contains("/cdn/"), "{:?}", t.image_urls);
    assert_eq!(h.sim.uploaded(&t.image_urls[0]), Some(img));
    assert!(t.prompt.contains("What is in this picture?"));
}

#[tokio::test]
async fn anthropic_image_blocks_are_uploaded_too() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (a, b) = (typed_bytes(JPEG, 100), typed_bytes(WEBP, 200));
    let body = json!({"model": "claude_sonnet_4_5", "max_tokens": 20, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": STANDARD.encode(&a)}},
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": STANDARD.encode(&b)}}]}]});
    let resp = h
        .post("/v1/messages")
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.expect("json");
    assert_eq!(status, 200, "{v}");
    let t = &h.sim.stats().triggers[0];
    assert_eq!(t.model, "claude_sonnet_4_5");
    let got: Vec<Option<Vec<u8>>> = t.image_urls.iter().map(|u| h.sim.uploaded(u)).collect();
    assert_eq!(got, [Some(a), Some(b)]);
}

async fn expect_refusal(h: &common::Harness, body: Value, needle: &str) {
    let (status, v) = h.chat(body).await;
    assert_eq!(status, 400, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains(needle), "{msg}");
    let stats = h.sim.stats();
    assert_eq!(
        stats.presigns + stats.uploads,
        0,
        "refused before any upload"
    );
    assert!(stats.triggers.is_empty());
}

#[tokio::test]
async fn a_text_only_model_refuses_images() {
    let h = start(SimConfig::default(), |_| {}).await;
    expect_refusal(
        &h,
        openai_body("glm_5_1", &[image_bytes(10)]),
        "does not accept images",
    )
    .await;
}

#[tokio::test]
async fn gen1_refuses_images() {
    let sim = SimConfig {
        gen2: false,
        ..SimConfig::default()
    };
    let h = start(sim, |_| {}).await;
    expect_refusal(&h, openai_body("GPT5", &[image_bytes(10)]), "Gen-2").await;
}

#[tokio::test]
async fn limits_are_enforced_before_any_upload() {
    let h = start(SimConfig::default(), |a| {
        a.max_image_bytes = 1000;
    })
    .await;
    expect_refusal(
        &h,
        openai_body("gpt_5_4", &[image_bytes(1001)]),
        "MAX_IMAGE_BYTES",
    )
    .await;
    expect_refusal(
        &h,
        openai_body("gpt_5_4", &vec![image_bytes(10); 5]),
        "at most 4",
    )
    .await;
    let svg = json!({"model": "gpt_5_4", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "x"},
        {"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zz4="}}]}]});
    expect_refusal(&h, svg, "media type").await;
    let plain_http = json!({"model": "gpt_5_4", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "x"},
        {"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]}]});
    expect_refusal(&h, plain_http, "https://").await;
    // The cloud metadata address, and a name of this machine: not fetched.
    for url in [
        "https://169.254.169.254/latest/meta-data/x.png",
        "https://localhost:1/a.png",
    ] {
        let inside = json!({"model": "gpt_5_4", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x"},
            {"type": "image_url", "image_url": {"url": url}}]}]});
        expect_refusal(&h, inside, "ALLOW_PRIVATE_IMAGE_URLS").await;
    }
    // IPv6 forms that carry a private IPv4 address: NAT64 (the metadata address on a NAT64
    // host), 6to4, IPv4-compatible; and the IETF protocol block.
    for url in [
        "https://[64:ff9b::a9fe:a9fe]/latest/x.png",
        "https://[2002:7f00:1::1]/a.png",
        "https://[::7f00:1]/a.png",
        "https://[64:ff9b:1::1]/a.png",
        "https://[fec0::1]/a.png",
        "https://192.0.0.8/a.png",
    ] {
        let inside = json!({"model": "gpt_5_4", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x"},
            {"type": "image_url", "image_url": {"url": url}}]}]});
        expect_refusal(&h, inside, "ALLOW_PRIVATE_IMAGE_URLS").await;
    }
    // Exactly at the limit goes through.
    let (status, v) = h.chat(openai_body("gpt_5_4", &[image_bytes(1000)])).await;
    assert_eq!(status, 200, "{v}");
}

fn with_data_url(url: &str) -> Value {
    json!({"model": "gpt_5_4", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "x"},
        {"type": "image_url", "image_url": {"url": url}}]}]})
}

/// The bytes must be what the client says they are, and there must be some: both are 400s
/// before any upload (an empty image used to reach the presign and come back as a 502).
#[tokio::test]
async fn empty_mislabelled_and_non_base64_images_are_refused_before_any_upload() {
    let h = start(SimConfig::default(), |_| {}).await;
    expect_refusal(&h, with_data_url("data:image/png;base64,"), "empty").await;
    let gif = format!(
        "data:image/png;base64,{}",
        STANDARD.encode(typed_bytes(GIF, 40))
    );
    expect_refusal(&h, with_data_url(&gif), "image/gif").await;
    let noise = format!("data:image/jpeg;base64,{}", STANDARD.encode([1u8; 40]));
    expect_refusal(&h, with_data_url(&noise), "not a png, jpeg, webp or gif").await;
    expect_refusal(&h, with_data_url("data:image/png,%89PNG"), ";base64").await;
    // The Anthropic block is held to the same rule.
    let body = json!({"model": "claude_sonnet_4_5", "max_tokens": 20, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": STANDARD.encode(typed_bytes(JPEG, 50))}},
        {"type": "text", "text": "x"}]}]});
    let resp = h
        .post("/v1/messages")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let stats = h.sim.stats();
    assert_eq!(
        stats.presigns + stats.uploads,
        0,
        "refused before any upload"
    );
}

#[tokio::test]
async fn images_of_a_follow_up_turn_go_into_the_same_history() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, first) = h
        .chat(json!({"model": "gpt_5_4", "messages": [common::user("hello")]}))
        .await;
    assert_eq!(status, 200, "{first}");
    let answer = first["choices"][0]["message"]["content"]
        .as_str()
        .expect("answer")
        .to_string();
    let img = image_bytes(64);
    let body = json!({"model": "gpt_5_4", "messages": [
        common::user("hello"),
        common::assistant(&answer),
        {"role": "user", "content": [{"type": "text", "text": "and this?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", STANDARD.encode(&img))}}]}]});
    let (status, v) = h.chat(body).await;
    assert_eq!(status, 200, "{v}");
    let t = h.sim.stats().triggers;
    assert_eq!(t.len(), 2);
    assert_eq!(t[1].chat_history_id, t[0].chat_history_id, "continued");
    assert!(t[0].image_urls.is_empty());
    assert_eq!(t[1].image_urls.len(), 1);
    assert_eq!(h.sim.uploaded(&t[1].image_urls[0]), Some(img));
}

/// The client refuses on its own too (a caller that skipped the catalogue's checks).
#[tokio::test]
async fn the_upstream_client_refuses_images_it_cannot_send() {
    use enginelabs_2api::upstream::images::ImageData;
    use enginelabs_2api::upstream::{
        Account, EngineClient, ProtocolChoice, TurnRequest, UpstreamConfig, UpstreamError,
    };
    for (gen2, protocol, model) in [
        (true, ProtocolChoice::Gen2, "glm_5_1"),
        (false, ProtocolChoice::Gen1, "GPT5"),
    ] {
        let sim = enginelabs_2api::simulator::Simulator::start(SimConfig {
            gen2,
            ..SimConfig::default()
        })
        .await
        .expect("sim");
        let mut cfg = UpstreamConfig::with_urls(&sim.url(), &sim.url());
        cfg.protocol = protocol;
        let client = EngineClient::new(cfg).expect("client");
        let account = std::sync::Arc::new(Account::new("t", &sim.account().cookie).expect("acc"));
        let req = TurnRequest {
            model: model.into(),
            prompt: "look".into(),
            continue_history: None,
            images: vec![ImageData {
                media_type: "image/png".into(),
                bytes: image_bytes(8).into(),
            }],
        };
        match client.start_turn(&account, req).await {
            Err(UpstreamError::ImagesRefused(msg)) => assert!(!msg.is_empty()),
            Err(other) => panic!("{model}: unexpected error {other}"),
            Ok(_) => panic!("{model}: images were accepted"),
        }
        let stats = sim.stats();
        assert_eq!((stats.presigns, stats.triggers.len()), (0, 0), "{model}");
    }
}
