//! The CLI door's test kit: a client of it with short timeouts, the chat body, the OAuth refresh
//! call made by hand, a turn's events read to the end, a refresh store that records each
//! rotation, and a stub token endpoint for answers the simulator never gives.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enginelabs_2api::simulator::Simulator;
use enginelabs_2api::upstream::cli::{
    CliAccount, CliClient, Credentials, RefreshStore, Rotation, Secret,
};
use enginelabs_2api::upstream::{Turn, TurnEvent, UpstreamConfig, UpstreamError};
use serde_json::{Value, json};

/// A CLI door client for `base` (idle and request timeouts of 5 s).
pub fn client(base: &str) -> CliClient {
    let mut up = UpstreamConfig::with_urls(base, base);
    up.idle_timeout = Duration::from_secs(5);
    up.request_timeout = Duration::from_secs(5);
    CliClient::new(&up).unwrap()
}

/// A one-message chat body for the door.
/// Credentials as `cto login` saves them, with an access token that has ten minutes left.
pub fn saved_credentials(access: &Value, refresh: &Value) -> Credentials {
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        + 600_000;
    Credentials::parse(
        &json!({"accessToken": access, "refreshToken": refresh, "expiresAt": far}).to_string(),
    )
    .expect("credentials parse")
}

pub fn hello(text: &str) -> Value {
    json!({"model": "gpt-5.4", "messages": [{"role": "user", "content": text}]})
}

/// `POST /oauth/token` with this refresh token, as any client of the door would send it.
pub async fn raw_refresh(sim: &Simulator, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.url()))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": token}))
        .send()
        .await
        .unwrap()
}

/// Every event of a turn, and the error that ended it, if one did.
pub async fn collect(mut turn: Turn) -> (Vec<TurnEvent>, Option<UpstreamError>) {
    let mut events = Vec::new();
    while let Some(next) = turn.next().await {
        match next {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

/// The concatenated text of the `Content` events.
pub fn content(events: &[TurnEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::Content(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// A refresh store that records every rotation and applies it with compare-and-set.
#[derive(Default)]
pub struct Recorder {
    pub rotations: Mutex<Vec<Rotation>>,
    pub stored: Mutex<Option<Secret>>,
    /// `current()` answers `None` this many times first (a store that learns late).
    pub blind: AtomicUsize,
}

#[async_trait::async_trait]
impl RefreshStore for Recorder {
    async fn rotated(&self, rotation: &Rotation) {
        self.rotations.lock().unwrap().push(rotation.clone());
        let mut stored = self.stored.lock().unwrap();
        if stored.as_ref().is_none_or(|s| *s == rotation.spent) {
            *stored = Some(rotation.fresh.clone());
        }
    }

    async fn current(&self) -> Option<Secret> {
        let blind = self
            .blind
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if blind.is_ok() {
            return None;
        }
        self.stored.lock().unwrap().clone()
    }
}

/// A new simulator account logged in on the CLI door, as the proxy would hold it; returns its
/// user id too.
pub fn account(sim: &Simulator, store: Arc<dyn RefreshStore>) -> (String, CliAccount) {
    let login = sim.add_cli_account();
    let creds = Credentials::parse(&login.refresh_token).unwrap();
    (login.user_id, CliAccount::new("test", &creds, store))
}

/// A stub `POST /oauth/token` on 127.0.0.1: it records each refresh token it is sent and, after
/// `delay`, answers `answer(n)` for the n-th call (from 1). Returns its base URL and the record.
pub async fn token_door(
    delay: Duration,
    answer: impl Fn(usize) -> Value + Clone + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/oauth/token",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let (log, answer) = (log.clone(), answer.clone());
            async move {
                tokio::time::sleep(delay).await;
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(v["refresh_token"].as_str().unwrap_or_default().to_string());
                    log.len()
                };
                axum::Json(answer(n))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}
