//! The account pool end to end through the simulator: per-account concurrency, the wait queue,
//! stickiness, failover, cooling, dead cookies, the circuit breaker and the answers given when
//! no account can serve.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::pool::{ADMIN, accounts, ask, pool_of, user_of};
use common::{assistant, eventually, user};
use enginelabs_2api::simulator::{Faults, SimConfig};
use serde_json::{Value, json};

#[tokio::test]
async fn per_account_limit_holds_under_fifty_concurrent_requests() {
    let sim_cfg = SimConfig {
        frame_delay: Duration::from_millis(5),
        ..SimConfig::default()
    };
    let (h, users) = pool_of(3, sim_cfg, |a| {
        a.account_concurrency = Some(Some(2));
    })
    .await;
    let h = Arc::new(h);
    let stop = Arc::new(AtomicBool::new(false));
    let peak_ws = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (h, stop, peak) = (Arc::clone(&h), Arc::clone(&stop), Arc::clone(&peak_ws));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(h.sim.stats().ws_open_now, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for i in 0..50 {
        let h = Arc::clone(&h);
        tasks.push(tokio::spawn(async move {
            h.chat(ask(&format!("parallel question {i}"))).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), 200);
    }
    stop.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");
    let list = accounts(&h).await;
    for (label, a) in &list {
        assert_eq!(a["limit"], 2, "{label}");
        let peak = a["peak_in_flight"].as_u64().expect("peak");
        assert!((1..=2).contains(&peak), "{label}: peak {peak}");
        assert_eq!(a["in_flight"], 0, "{label}: every slot given back");
    }
    let peak = peak_ws.load(Ordering::Relaxed);
    assert!(
        peak <= 6,
        "at most accounts*limit sockets at once, saw {peak}"
    );
    let served: std::collections::HashSet<_> = h
        .sim
        .stats()
        .triggers
        .iter()
        .map(|t| t.user_id.clone())
        .collect();
    assert_eq!(served.len(), users.len(), "every account took a share");
}

#[tokio::test]
async fn a_full_pool_queues_then_answers_429() {
    let (h, _) = pool_of(1, SimConfig::default(), |a| {
        a.account_concurrency = Some(Some(1));
        a.queue_timeout_secs = Duration::from_secs(1);
        a.max_queue = 1;
    })
    .await;
    h.sim.set_faults(Faults {
        slow_frame_ms: 120,
        ..Faults::default()
    });
    let h = Arc::new(h);
    let first = {
        let h = Arc::clone(&h);
        tokio::spawn(async move { h.chat(ask("slow one")).await.0 })
    };
    assert!(
        eventually(5, || h.sim.stats().ws_open_now == 1).await,
        "first turn running"
    );
    let queued = {
        let h = Arc::clone(&h);
        tokio::spawn(async move {
            h.post("/v1/chat/completions")
                .json(&ask("waits in the queue"))
                .send()
                .await
                .expect("send")
        })
    };
    // Once the second request holds the only queue place, the third finds the queue full.
    assert!(
        eventually(5, || h.state.pool().waiting() == 1).await,
        "second request queued"
    );
    let (status, body) = h.chat(ask("finds the queue full")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "queue_full", "{body}");
    let resp = queued.await.expect("join");
    assert_eq!(resp.status().as_u16(), 429);
    assert!(
        resp.headers().get("retry-after").is_some(),
        "Retry-After on queue timeout"
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "queue_timeout", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("QUEUE_TIMEOUT_SECS")
    );
    assert_eq!(
        first.await.expect("join"),
        200,
        "the running turn was not disturbed"
    );
    assert_eq!(h.state.pool().waiting(), 0, "nobody left in the queue");
}

#[tokio::test]
async fn continued_conversations_stay_on_their_account() {
    let (h, _) = pool_of(3, SimConfig::default(), |_| {}).await;
    for i in 0..6 {
        let q = format!("sticky question {i}");
        let (s1, v1) = h.chat(ask(&q)).await;
        assert_eq!(s1, 200, "{v1}");
        let answer = v1["choices"][0]["message"]["content"]
            .as_str()
            .expect("answer");
        let follow = format!("sticky follow-up {i}");
        let (s2, v2) = h
            .chat(json!({"model": "ClaudeSonnet4_5",
                "messages": [user(&q), assistant(answer), user(&follow)]}))
            .await;
        assert_eq!(s2, 200, "{v2}");
        let first = user_of(&h, &q);
        let second = user_of(&h, &follow);
        assert_eq!(first.len(), 1);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].0, first[0].0, "turn 2 on the account of turn 1");
        assert_eq!(second[0].1, 2, "turn 2 continued the same history");
    }
    let served: std::collections::HashSet<_> = h
        .sim
        .stats()
        .triggers
        .iter()
        .map(|t| t.user_id.clone())
        .collect();
    assert!(
        served.len() > 1,
        "new conversations spread over the accounts"
    );
}

#[tokio::test]
async fn a_new_conversation_fails_over_when_its_cookie_died() {
    let (h, users) = pool_of(2, SimConfig::default(), |_| {}).await;
    h.sim.revoke(&users[1]);
    for i in 0..4 {
        let (s, v) = h.chat(ask(&format!("failover {i}"))).await;
        assert_eq!(s, 200, "{v}");
    }
    assert!(h.sim.stats().triggers.iter().all(|t| t.user_id == users[0]));
    let list = accounts(&h).await;
    assert_eq!(list["cookie-2"]["state"], "dead", "{:?}", list["cookie-2"]);
    assert!(
        list["cookie-2"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("rejected")
    );
    assert_eq!(list["cookie-1"]["state"], "active");
}

/// One account's trigger answers 500 every time; the other is healthy. Every new conversation
/// still succeeds (the failed attempt moves to the healthy account before any byte reached the
/// client), and after BREAKER_FAILURES failures the sick account's breaker opens, so it stops
/// costing attempts at all.
#[tokio::test]
async fn a_5xx_on_one_account_fails_over_and_opens_its_breaker() {
    let (h, users) = pool_of(2, SimConfig::default(), |a| {
        a.breaker_failures = 2;
        a.breaker_open = Duration::from_secs(3600);
    })
    .await;
    h.sim.set_faults(Faults {
        trigger_status: Some(500),
        trigger_status_count: 0,
        trigger_status_user: Some(users[1].clone()),
        ..Faults::default()
    });
    for i in 0..8 {
        let (s, v) = h.chat(ask(&format!("sick neighbour {i}"))).await;
        assert_eq!(s, 200, "request {i}: {v}");
        let content = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
        assert!(!content.is_empty(), "{v}");
    }
    let triggers = h.sim.stats().triggers;
    assert_eq!(triggers.len(), 8, "only the healthy account started turns");
    assert!(triggers.iter().all(|t| t.user_id == users[0]));
    let list = accounts(&h).await;
    assert_eq!(
        list["cookie-2"]["breaker"], "open",
        "{:?}",
        list["cookie-2"]
    );
    assert!(
        list["cookie-2"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("500"),
        "{:?}",
        list["cookie-2"]
    );
    assert_eq!(
        list["cookie-1"]["breaker"], "closed",
        "{:?}",
        list["cookie-1"]
    );
}

#[tokio::test]
async fn a_rate_limited_account_cools_and_comes_back() {
    let (h, _) = pool_of(2, SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        trigger_status: Some(429),
        trigger_status_count: 1,
        ..Faults::default()
    });
    let (s, v) = h.chat(ask("meets a 429")).await;
    assert_eq!(s, 200, "{v}");
    let list = accounts(&h).await;
    let cooling: Vec<_> = list.values().filter(|a| a["state"] == "cooling").collect();
    assert_eq!(cooling.len(), 1, "{list:?}");
    let label = cooling[0]["label"].as_str().expect("label").to_string();
    // The simulator's 429 says Retry-After: 1.
    let mut back = false;
    for _ in 0..100 {
        if accounts(&h).await[&label]["state"] == "active" {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "cooling ended by itself");
}

#[tokio::test]
async fn a_dead_cookie_recovers_on_check() {
    let (h, users) = pool_of(1, SimConfig::default(), |_| {}).await;
    h.sim.revoke(&users[0]);
    let (s, v) = h.chat(ask("dead")).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "cookie_rejected", "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("cookie-1") && msg.contains("refreshed"),
        "{msg}"
    );
    let acct = &accounts(&h).await["cookie-1"];
    assert_eq!(acct["state"], "dead");
    let id = acct["id"].as_str().expect("id").to_string();
    h.sim.restore(&users[0]);
    let checked: Value = h
        .http
        .post(format!("{}/admin/api/accounts/{id}/check", h.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(checked["state"], "active", "{checked}");
    assert_eq!(checked["user_id"], users[0].as_str());
    assert_eq!(
        checked["quota"]["limit"], 300.0,
        "quota read on check: {checked}"
    );
    let (s, v) = h.chat(ask("alive again")).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn every_account_dead_names_their_labels() {
    let (h, users) = pool_of(2, SimConfig::default(), |_| {}).await;
    for u in &users {
        h.sim.revoke(u);
    }
    let (s, v) = h.chat(ask("nobody home")).await;
    assert_eq!(s, 503, "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("cookie-1") && msg.contains("cookie-2"),
        "{msg}"
    );
}

#[tokio::test]
async fn every_account_cooling_answers_429_with_retry_after() {
    let (h, _) = pool_of(2, SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        trigger_status: Some(429),
        trigger_status_count: 0,
        ..Faults::default()
    });
    let resp = h
        .post("/v1/chat/completions")
        .json(&ask("all cooling"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429);
    let after: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&after), "{after}");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], "accounts_cooling", "{v}");
    assert!(accounts(&h).await.values().all(|a| a["state"] == "cooling"));
}

#[tokio::test]
async fn the_breaker_opens_on_repeated_failures_and_closes_after_a_good_trial() {
    let (h, _) = pool_of(1, SimConfig::default(), |a| {
        a.breaker_failures = 2;
        a.breaker_open = Duration::from_secs(1);
        a.retry_attempts = 1;
    })
    .await;
    h.sim.set_faults(Faults {
        trigger_status: Some(503),
        trigger_status_count: 0,
        ..Faults::default()
    });
    for _ in 0..2 {
        let (s, v) = h.chat(ask("upstream down")).await;
        assert_eq!(s, 502, "{v}");
    }
    assert_eq!(accounts(&h).await["cookie-1"]["breaker"], "open");
    let projects = h.sim.stats().projects;
    let (s, v) = h.chat(ask("breaker open")).await;
    assert_eq!(s, 429, "an open breaker takes the account out: {v}");
    assert_eq!(
        h.sim.stats().projects,
        projects,
        "no upstream call while open"
    );
    h.sim.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = h.chat(ask("trial request")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(accounts(&h).await["cookie-1"]["breaker"], "closed");
}

#[tokio::test]
async fn transient_failures_are_retried_before_the_first_byte() {
    let (h, _) = pool_of(1, SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        trigger_status: Some(502),
        trigger_status_count: 2,
        ..Faults::default()
    });
    let (s, v) = h.chat(ask("retried")).await;
    assert_eq!(s, 200, "two 502s then success within RETRY_ATTEMPTS=3: {v}");
    assert_eq!(accounts(&h).await["cookie-1"]["breaker"], "closed");
}

#[tokio::test]
async fn the_quota_is_read_after_an_account_is_first_used() {
    let (h, _) = pool_of(1, SimConfig::default(), |_| {}).await;
    assert!(
        accounts(&h).await["cookie-1"]["quota"].is_null(),
        "no call before use"
    );
    let (s, v) = h.chat(ask("uses credits")).await;
    assert_eq!(s, 200, "{v}");
    let mut quota = Value::Null;
    for _ in 0..150 {
        quota = accounts(&h).await["cookie-1"]["quota"].clone();
        if !quota.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(quota["limit"], 300.0, "{quota}");
    assert!(quota["used"].as_f64().unwrap_or(0.0) > 0.0, "{quota}");
    assert_eq!(quota["concurrency_limit"], 2);
    assert_eq!(quota["exhausted"], false);
}

#[tokio::test]
async fn a_continued_turn_that_never_started_keeps_its_history() {
    let (h, _) = pool_of(2, SimConfig::default(), |_| {}).await;
    let (s, v) = h.chat(ask("keep me")).await;
    assert_eq!(s, 200, "{v}");
    let answer = v["choices"][0]["message"]["content"]
        .as_str()
        .expect("answer");
    let follow = json!({"model": "ClaudeSonnet4_5",
        "messages": [user("keep me"), assistant(answer), user("second turn")]});
    h.sim.set_faults(Faults {
        trigger_status: Some(400),
        trigger_status_count: 1,
        ..Faults::default()
    });
    let (s, v) = h.chat(follow.clone()).await;
    assert_ne!(s, 200, "the refused trigger is not retried: {v}");
    let (s, v) = h.chat(follow).await;
    assert_eq!(s, 200, "{v}");
    let first = user_of(&h, "keep me");
    let second = user_of(&h, "second turn");
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(
        second[0],
        (first[0].0.clone(), 2),
        "the retry continued the history"
    );
}
