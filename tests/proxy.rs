//! `UPSTREAM_PROXY`: every call to cto.new, the WebSocket included, goes through the configured
//! HTTP proxy, with its credentials. The client is given base URLs on a host name that does not
//! resolve (`.invalid`); only the test's proxy maps it to the simulator, so a finished turn proves
//! that nothing went around the proxy. Runs with either transport (`--features impersonate`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enginelabs_2api::simulator::{SimConfig, Simulator, reply_text};
use enginelabs_2api::upstream::transport::UpstreamProxy;
use enginelabs_2api::upstream::{
    Account, EngineClient, ProtocolChoice, TurnEvent, TurnRequest, UpstreamConfig, UpstreamError,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const HOST: &str = "cto-sim.invalid";

/// A forward proxy for one upstream: `CONNECT` tunnels and absolute-form requests to
/// `cto-sim.invalid:<port>` reach the simulator; it wants `Basic user:pass` when `auth` is set.
struct ForwardProxy {
    url: String,
    connections: Arc<AtomicUsize>,
    /// The request line of each connection (`CONNECT host:port ...` or `GET http://...`).
    first_lines: Arc<Mutex<Vec<String>>>,
}

async fn forward_proxy(sim_port: u16, auth: Option<&'static str>) -> ForwardProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let first_lines = Arc::new(Mutex::new(Vec::new()));
    let (count, lines) = (Arc::clone(&connections), Arc::clone(&first_lines));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let lines = Arc::clone(&lines);
            tokio::spawn(async move {
                let _ = serve(client, sim_port, auth, lines).await;
            });
        }
    });
    ForwardProxy {
        url,
        connections,
        first_lines,
    }
}

async fn serve(
    mut client: TcpStream,
    sim_port: u16,
    auth: Option<&str>,
    lines: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let first = text.lines().next().unwrap_or_default().to_string();
    lines.lock().expect("lines").push(first.clone());
    if let Some(creds) = auth {
        let expected = format!(
            "proxy-authorization: basic {}",
            base64_encode(creds.as_bytes())
        );
        if !text
            .to_ascii_lowercase()
            .contains(&expected.to_ascii_lowercase())
        {
            client
                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm=\"t\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await?;
            return Ok(());
        }
    }
    let target = first.split_whitespace().nth(1).unwrap_or_default();
    let known = target.contains(&format!("{HOST}:{sim_port}"));
    if !known {
        client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", sim_port)).await?;
    if first.starts_with("CONNECT ") {
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
    } else {
        upstream.write_all(&head).await?;
    }
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn client_via(sim: &Simulator, proxy: &str) -> EngineClient {
    client_to(sim, "http", proxy)
}

/// A client for `scheme://cto-sim.invalid:<port>` through `proxy`.
fn client_to(sim: &Simulator, scheme: &str, proxy: &str) -> EngineClient {
    let base = format!("{scheme}://{HOST}:{}", port_of(sim));
    let mut cfg = UpstreamConfig::with_urls(&base, &base);
    cfg.protocol = ProtocolChoice::Gen2;
    cfg.request_timeout = Duration::from_secs(10);
    cfg.idle_timeout = Duration::from_secs(10);
    cfg.proxy = Some(UpstreamProxy::parse(proxy).expect("proxy URL"));
    EngineClient::new(cfg).expect("client")
}

fn port_of(sim: &Simulator) -> u16 {
    url::Url::parse(&sim.url())
        .expect("sim url")
        .port()
        .expect("sim port")
}

fn request(prompt: &str) -> TurnRequest {
    TurnRequest {
        model: "gpt_5_4".into(),
        prompt: prompt.into(),
        continue_history: None,
        images: Vec::new(),
    }
}

#[tokio::test]
async fn a_whole_turn_goes_through_the_proxy_with_its_credentials() {
    let sim = Simulator::start(SimConfig {
        reply_words: 8,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let proxy = forward_proxy(port_of(&sim), Some("al ice:s3:cr+t")).await;
    let with_creds = proxy.url.replace("http://", "http://al%20ice:s3%3Acr+t@");
    let client = client_via(&sim, &with_creds);
    let account = Arc::new(Account::new("p", &sim.account().cookie).expect("account"));
    let mut turn = client
        .start_turn(&account, request("through the tunnel"))
        .await
        .expect("turn starts through the proxy");
    let mut content = String::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), turn.next())
            .await
            .expect("turn progresses")
        {
            Some(Ok(TurnEvent::Content(c))) => content.push_str(&c),
            Some(Ok(TurnEvent::Finished { .. })) => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("turn failed: {e}"),
            None => panic!("turn ended without finishing"),
        }
    }
    assert_eq!(content, reply_text("through the tunnel", 1, 8));
    let lines = proxy.first_lines.lock().expect("lines").clone();
    assert!(
        proxy.connections.load(Ordering::SeqCst) >= 2,
        "HTTP and the WebSocket: {lines:?}"
    );
    // The WebSocket reached the simulator through the proxy: tunnelled, or forwarded as an
    // upgrade request.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("CONNECT ") || l.contains("/buffer/stream")),
        "{lines:?}"
    );
}

/// The error of the first Clerk call through a failing proxy: a network error (never blamed
/// on the cookie) whose text does not hold `password`.
async fn proxy_failure(sim: &Simulator, client: &EngineClient, password: &str) -> String {
    let account = Arc::new(Account::new("p", &sim.account().cookie).expect("account"));
    let err = client
        .ensure_ready(&account)
        .await
        .expect_err("the proxy fails the call");
    let text = err.to_string();
    assert!(
        matches!(err, UpstreamError::Network { .. }),
        "not blamed on the cookie: {err:?}"
    );
    assert!(!text.contains(password), "no password in errors: {text}");
    text
}

#[tokio::test]
async fn wrong_proxy_credentials_say_so() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let proxy = forward_proxy(port_of(&sim), Some("user:right")).await;
    let client = client_via(&sim, &proxy.url.replace("http://", "http://user:wrong@"));
    let text = proxy_failure(&sim, &client, "wrong").await;
    assert!(text.contains("UPSTREAM_PROXY"), "{text}");
}

#[tokio::test]
async fn an_unreachable_proxy_is_named_without_its_password() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    // Port 1 on loopback refuses connections.
    let client = client_via(&sim, "http://me:secret@127.0.0.1:1");
    let text = proxy_failure(&sim, &client, "secret").await;
    assert!(
        text.contains("UPSTREAM_PROXY http://127.0.0.1:1 (with credentials)"),
        "{text}"
    );
}

/// Toward https (the real cto.new), the proxy's refusal comes at CONNECT: still a network error
/// that names the proxy, not the cookie's fault.
#[tokio::test]
async fn a_refused_tunnel_names_the_proxy() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let proxy = forward_proxy(port_of(&sim), Some("user:right")).await;
    let client = client_to(
        &sim,
        "https",
        &proxy.url.replace("http://", "http://user:wrong@"),
    );
    let text = proxy_failure(&sim, &client, "wrong").await;
    assert!(text.contains("UPSTREAM_PROXY"), "{text}");
    let lines = proxy.first_lines.lock().expect("lines").clone();
    assert!(lines.iter().all(|l| l.starts_with("CONNECT ")), "{lines:?}");
}
