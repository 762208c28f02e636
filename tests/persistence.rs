//! Conversation memory survives restarts (embedded store), survives SIGKILL, is shared between
//! replicas (Redis), keeps the rotated cookie, and degrades to new conversations when Redis is
//! down, coming back when it does.

mod common;

use std::time::Duration;

use common::proc::{Proxy, TempDir, free_port, spawn_proxy};
use common::redis::{LocalRedis, Prefix};
use common::reply::words;
use common::{KEY, assistant, user};
use enginelabs_2api::simulator::{SimConfig, Simulator, reply_text};
use serde_json::{Value, json};

fn env_for(sim: &Simulator, extra: &[(&str, String)]) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = vec![
        ("API_MASTER_KEY", KEY.to_string()),
        ("CLERK_COOKIE", sim.account().cookie),
        ("CLERK_BASE_URL", sim.url()),
        ("ENGINE_BASE_URL", sim.url()),
        ("MODELS", "GPT5".to_string()),
    ];
    for (k, v) in extra {
        let k: &'static str = match *k {
            "DATA_DIR" => "DATA_DIR",
            "REDIS_URL" => "REDIS_URL",
            "REDIS_PREFIX" => "REDIS_PREFIX",
            "STORE" => "STORE",
            "CLERK_COOKIE" => "CLERK_COOKIE",
            other => panic!("unexpected setting {other}"),
        };
        env.retain(|(e, _)| *e != k);
        env.push((k, v.clone()));
    }
    env
}

async fn chat(base: &str, messages: Value) -> (u16, Value) {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let r = HTTP
        .get_or_init(reqwest::Client::new)
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "GPT5", "messages": messages}))
        .send()
        .await;
    let Ok(r) = r else { return (0, Value::Null) };
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn content(v: &Value) -> String {
    v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string()
}

#[tokio::test]
async fn a_conversation_continues_after_a_restart() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let dir = TempDir::new("restart");
    let env = env_for(
        &sim,
        &[("DATA_DIR", dir.0.join("data").display().to_string())],
    );
    let p1 = spawn_proxy(&env, &dir.0.join("p1.log")).await;
    let (s, v) = chat(&p1.base, json!([user("before restart")])).await;
    assert_eq!(s, 200, "{v}");
    let a1 = content(&v);
    assert!(p1.stop().await, "SIGTERM ends the proxy with status 0");
    let p2 = spawn_proxy(&env, &dir.0.join("p2.log")).await;
    let (s, v) = chat(
        &p2.base,
        json!([
            user("before restart"),
            assistant(&a1),
            user("after restart")
        ]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(content(&v), reply_text("after restart", 2, words()));
    let t = sim.stats().triggers;
    assert_eq!(t[1].chat_history_id, t[0].chat_history_id);
    assert_eq!(t[1].prompt, "after restart");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file = dir.0.join("data").join("enginelabs-2api.redb");
        let mode = std::fs::metadata(&file)
            .expect("store file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the store holds cookies: owner-only");
    }
    p2.kill().await;
}

#[tokio::test]
async fn completed_turns_survive_sigkill() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let dir = TempDir::new("crash");
    let env = env_for(
        &sim,
        &[("DATA_DIR", dir.0.join("data").display().to_string())],
    );
    let p1 = spawn_proxy(&env, &dir.0.join("p1.log")).await;
    let base = p1.base.clone();
    // Conversations start in a steady stream; the kill lands while some are in flight.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (base, tx, done) = (base.clone(), tx.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 15)).await;
            let q = format!("crash conversation {i}");
            if let (200, v) = chat(&base, json!([user(&q)])).await {
                let _ = tx.send((q, content(&v)));
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }));
    }
    drop(tx);
    // Kill once a few turns have completed, while later ones are still in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while done.load(std::sync::atomic::Ordering::SeqCst) < 5 && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p1.kill().await;
    for t in tasks {
        let _ = t.await;
    }
    let mut completed = Vec::new();
    while let Some(c) = rx.recv().await {
        completed.push(c);
    }
    assert!(
        !completed.is_empty(),
        "some turns completed before the kill"
    );
    let p2 = spawn_proxy(&env, &dir.0.join("p2.log")).await;
    for (q, a) in &completed {
        let (s, v) = chat(
            &p2.base,
            json!([user(q), assistant(a), user("still there?")]),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            content(&v),
            reply_text("still there?", 2, words()),
            "conversation `{q}` kept its history"
        );
    }
    p2.kill().await;
}

#[tokio::test]
async fn the_rotated_cookie_is_used_after_a_restart() {
    let sim = Simulator::start(SimConfig {
        token_ttl: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let pasted = sim.account().cookie;
    let dir = TempDir::new("rotate");
    let env = env_for(
        &sim,
        &[("DATA_DIR", dir.0.join("data").display().to_string())],
    );
    let p1 = spawn_proxy(&env, &dir.0.join("p1.log")).await;
    for i in 0..3 {
        assert_eq!(
            chat(&p1.base, json!([user(&format!("rotate {i}"))]))
                .await
                .0,
            200
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
    }
    assert!(sim.stats().mints >= 3, "several mints, several rotations");
    assert!(p1.stop().await);
    // The pasted cookie is now stale at the simulator (it keeps only the current and previous).
    assert_ne!(sim.account().cookie, pasted);
    let p2 = spawn_proxy(&env, &dir.0.join("p2.log")).await;
    let (s, v) = chat(&p2.base, json!([user("after restart")])).await;
    assert_eq!(
        s, 200,
        "the remembered rotated cookie was used, not the stale pasted one: {v}"
    );
    p2.kill().await;
}

#[tokio::test]
#[ignore = "needs Redis (REDIS_URL)"]
async fn two_replicas_share_conversations_through_redis() {
    let keys = Prefix::new();
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let dir = TempDir::new("replicas");
    let env = env_for(
        &sim,
        &[
            ("REDIS_URL", keys.url.clone()),
            ("REDIS_PREFIX", keys.prefix.clone()),
        ],
    );
    let p1 = spawn_proxy(&env, &dir.0.join("p1.log")).await;
    let p2 = spawn_proxy(&env, &dir.0.join("p2.log")).await;
    let (_, v) = chat(&p1.base, json!([user("replica one")])).await;
    let a1 = content(&v);
    let (s, v) = chat(
        &p2.base,
        json!([user("replica one"), assistant(&a1), user("replica two")]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(content(&v), reply_text("replica two", 2, words()));
    let t = sim.stats().triggers;
    assert_eq!(t[1].chat_history_id, t[0].chat_history_id);
    p1.kill().await;
    p2.kill().await;
}

/// Stops and starts a `redis-server` of its own (the suite's Redis stays up for the others).
#[tokio::test]
#[ignore = "needs Redis (the redis-server binary)"]
async fn redis_outage_degrades_to_new_conversations_and_recovers() {
    let port = free_port();
    let redis = LocalRedis::start(port).await;
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let dir = TempDir::new("outage");
    let env = env_for(&sim, &[("REDIS_URL", redis.url())]);
    let p: Proxy = spawn_proxy(&env, &dir.0.join("p.log")).await;
    drop(redis);
    // Redis is down: requests still work, as new conversations.
    let (s, v) = chat(&p.base, json!([user("during outage")])).await;
    assert_eq!(s, 200, "{v}");
    let a = content(&v);
    let (s, _) = chat(
        &p.base,
        json!([user("during outage"), assistant(&a), user("next")]),
    )
    .await;
    assert_eq!(s, 200);
    let t = sim.stats().triggers;
    assert_ne!(
        t[1].chat_history_id, t[0].chat_history_id,
        "no memory while Redis is down"
    );
    // Redis is back: memory works again without a restart of the proxy.
    let _redis = LocalRedis::start(port).await;
    let mut ok = false;
    for _ in 0..20 {
        let (_, v) = chat(&p.base, json!([user("after outage")])).await;
        let a = content(&v);
        let (_, _) = chat(
            &p.base,
            json!([user("after outage"), assistant(&a), user("remember?")]),
        )
        .await;
        let t = sim.stats().triggers;
        let n = t.len();
        if t[n - 1].chat_history_id == t[n - 2].chat_history_id {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        ok,
        "conversation memory came back with Redis; logs:\n{}",
        p.logs()
    );
    assert!(p.logs().contains("store"), "the outage was logged");
    p.kill().await;
}

#[tokio::test]
async fn a_corrupt_store_file_stops_the_start_with_a_clear_error() {
    let dir = TempDir::new("corrupt");
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let file = data.join("enginelabs-2api.redb");
    std::fs::write(&file, vec![0x5a; 64 * 1024]).expect("garbage");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"))
        .arg("serve")
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", free_port().to_string())
        .env("DATA_DIR", &data)
        .env("API_MASTER_KEY", KEY)
        .output()
        .await
        .expect("run the binary");
    assert!(
        !out.status.success(),
        "the proxy must not start on a corrupt store"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&file.display().to_string()),
        "the error names the file:\n{stderr}"
    );
    assert!(
        stderr.contains("Move the file aside"),
        "the error says what to do:\n{stderr}"
    );
}
