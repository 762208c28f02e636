//! Conversation continuity: follow-up turns land in the same upstream history and send only
//! the new turn; regenerate and edit start a new history; conversations never share one.

mod common;

use common::reply::words;
use common::*;
use enginelabs_2api::config::Secret;
use enginelabs_2api::config::values;
use enginelabs_2api::simulator::{SimConfig, reply_text};
use serde_json::{Value, json};

async fn ask(h: &Harness, messages: &[Value], stream: bool) -> String {
    let body = json!({"model": "GPT5", "messages": messages});
    if stream {
        let (status, data) = h.chat_stream(body).await;
        assert_eq!(status, 200);
        stream_text(&data).0
    } else {
        let (status, v) = h.chat(body).await;
        assert_eq!(status, 200, "{v}");
        v["choices"][0]["message"]["content"]
            .as_str()
            .expect("content")
            .to_string()
    }
}

async fn three_turns(protocol: &str) {
    let h = start(SimConfig::default(), |a| {
        a.upstream_protocol = values::protocol(protocol).expect("valid upstream_protocol")
    })
    .await;
    let sys = json!({"role": "system", "content": "Be brief."});
    let mut msgs = vec![sys, user("first question")];
    let a1 = ask(&h, &msgs, true).await;
    msgs.push(assistant(&a1));
    msgs.push(user("second question"));
    let a2 = ask(&h, &msgs, false).await;
    assert_eq!(a2, reply_text("second question", 2, words()));
    // Clients echo the assistant text with different whitespace: still the same conversation.
    msgs.push(assistant(&format!("  {}\n", a2.replace(' ', "  "))));
    msgs.push(user("third question"));
    let a3 = ask(&h, &msgs, true).await;
    assert_eq!(a3, reply_text("third question", 3, words()));

    let t = h.sim.stats().triggers;
    assert_eq!(t.len(), 3);
    assert!(
        t.iter().all(|x| x.chat_history_id == t[0].chat_history_id),
        "one upstream history: {t:?}"
    );
    assert_eq!(t.iter().map(|x| x.turn).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(t[0].prompt, "[System]\nBe brief.\n\n[User]\nfirst question");
    assert_eq!(t[1].prompt, "second question", "only the new turn is sent");
    assert_eq!(t[2].prompt, "third question");
}

#[tokio::test]
async fn three_turns_continue_one_history_gen2() {
    three_turns("gen2").await;
}

#[tokio::test]
async fn three_turns_continue_one_history_gen1() {
    three_turns("gen1").await;
}

#[tokio::test]
async fn regenerate_starts_a_new_history_with_the_whole_transcript() {
    let h = start(SimConfig::default(), |_| {}).await;
    let mut msgs = vec![user("q1")];
    let a1 = ask(&h, &msgs, false).await;
    msgs.push(assistant(&a1));
    msgs.push(user("q2"));
    ask(&h, &msgs, false).await;
    // Regenerate: the same request again. The first history has moved on, so it must not be reused.
    let again = ask(&h, &msgs, false).await;
    assert_eq!(
        again,
        reply_text(
            &format!("[User]\nq1\n\n[Assistant]\n{a1}\n\n[User]\nq2"),
            1,
            words()
        )
    );
    let t = h.sim.stats().triggers;
    assert_eq!(t.len(), 3);
    assert_eq!(t[1].chat_history_id, t[0].chat_history_id);
    assert_ne!(t[2].chat_history_id, t[0].chat_history_id);
    assert_eq!(t[2].turn, 1);
    assert_eq!(
        t[2].prompt,
        format!("[User]\nq1\n\n[Assistant]\n{a1}\n\n[User]\nq2")
    );
}

#[tokio::test]
async fn editing_an_earlier_message_starts_a_new_history() {
    let h = start(SimConfig::default(), |_| {}).await;
    let a1 = ask(&h, &[user("q1")], false).await;
    let edited = vec![user("q1 edited"), assistant(&a1), user("q2")];
    ask(&h, &edited, false).await;
    let t = h.sim.stats().triggers;
    assert_ne!(t[1].chat_history_id, t[0].chat_history_id);
    assert!(t[1].prompt.contains("q1 edited"));
}

#[tokio::test]
async fn parallel_conversations_never_share_a_history() {
    let h = std::sync::Arc::new(start(SimConfig::default(), |_| {}).await);
    let mut tasks = Vec::new();
    for c in 0..4 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let mut msgs = vec![user(&format!("conversation {c} turn 1"))];
            for turn in 1..=3 {
                let a = ask(&h, &msgs, turn % 2 == 0).await;
                assert_eq!(
                    a,
                    reply_text(&format!("conversation {c} turn {turn}"), turn, words())
                );
                msgs.push(assistant(&a));
                msgs.push(user(&format!("conversation {c} turn {}", turn + 1)));
            }
        }));
    }
    for t in tasks {
        t.await.expect("conversation task");
    }
    let t = h.sim.stats().triggers;
    assert_eq!(t.len(), 12);
    for c in 0..4 {
        let mine: Vec<_> = t
            .iter()
            .filter(|x| x.prompt.contains(&format!("conversation {c} ")))
            .collect();
        assert_eq!(mine.len(), 3);
        assert!(
            mine.iter()
                .all(|x| x.chat_history_id == mine[0].chat_history_id)
        );
        let others = t
            .iter()
            .filter(|x| !x.prompt.contains(&format!("conversation {c} ")));
        assert!(
            others
                .into_iter()
                .all(|x| x.chat_history_id != mine[0].chat_history_id)
        );
    }
}

#[tokio::test]
async fn identical_first_turns_of_two_conversations_get_two_histories() {
    // The seed hashed messages[:-1], so every first turn collided. Here two identical
    // conversations that go on differently must not share an upstream history.
    let h = start(SimConfig::default(), |_| {}).await;
    let a = ask(&h, &[user("hello")], false).await;
    let b = ask(&h, &[user("hello")], false).await;
    assert_eq!(a, b);
    ask(&h, &[user("hello"), assistant(&a), user("left")], false).await;
    ask(&h, &[user("hello"), assistant(&b), user("right")], false).await;
    let t = h.sim.stats().triggers;
    assert_ne!(t[0].chat_history_id, t[1].chat_history_id);
    // Each follow-up continued exactly one of them, not the same one twice.
    assert_ne!(t[2].chat_history_id, t[3].chat_history_id);
}

#[tokio::test]
async fn different_keys_do_not_share_conversations() {
    let h = start(SimConfig::default(), |a| {
        a.api_keys = Some(Secret::new("sk-other"))
    })
    .await;
    let a1 = ask(&h, &[user("shared start")], false).await;
    let body =
        json!({"model": "GPT5", "messages": [user("shared start"), assistant(&a1), user("next")]});
    let r = h
        .http
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth("sk-other")
        .json(&body)
        .send();
    assert_eq!(r.await.expect("send").status().as_u16(), 200);
    let t = h.sim.stats().triggers;
    assert_ne!(
        t[1].chat_history_id, t[0].chat_history_id,
        "another key starts its own history"
    );
}

/// A client that hangs up as soon as it reads `[DONE]` (many SDKs stop there) still has its
/// turn remembered: the store write runs off the answer's path but in a task the hang-up cannot
/// cancel, and the follow-up finds it in the embedded store (queued writes are read back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_at_done_keeps_its_conversation() {
    let dir = common::proc::TempDir::new("hangup");
    let store = enginelabs_2api::store::EmbeddedStore::open(
        &dir.0.join("hangup.redb"),
        enginelabs_2api::store::StoreLimits::default(),
    )
    .expect("open store");
    let sim = enginelabs_2api::simulator::Simulator::start(SimConfig::default())
        .await
        .expect("sim");
    let a = args_for(&sim);
    let h = start_with(sim, a, std::sync::Arc::new(store)).await;
    let mut msgs = vec![user("first question")];
    for round in 1..=3u32 {
        let resp = h
            .post("/v1/chat/completions")
            .json(&json!({"model": "GPT5", "messages": msgs, "stream": true}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let mut resp = resp;
        let mut text = String::new();
        while let Some(chunk) = resp.chunk().await.expect("chunk") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("data: [DONE]") {
                break;
            }
        }
        drop(resp); // hang up before the body ends
        let answer = stream_text(&sse_data(&text)).0;
        assert_eq!(answer, reply_text(&last_user(&msgs), round, words()));
        msgs.push(assistant(&answer));
        msgs.push(user(&format!("question {}", round + 1)));
    }
    let t = h.sim.stats().triggers;
    assert_eq!(t.len(), 3);
    assert!(
        t.iter().all(|x| x.chat_history_id == t[0].chat_history_id),
        "one upstream history: {t:?}"
    );
    assert_eq!(t[1].prompt, "question 2", "only the new turn is sent");
}

fn last_user(msgs: &[Value]) -> String {
    msgs.last().expect("a message")["content"]
        .as_str()
        .expect("text")
        .to_string()
}
