//! Property tests of [`super::TurnTracker`] (bounded, part of `cargo test`): whatever frames
//! arrive, in any order, with reconnects between them, it never panics and ends a turn at most
//! once, with nothing after; deltas arrive exactly once, in order.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

use super::*;

/// Text fragments that frames are built from, some of them frames of their own.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("pong".to_string()),
        Just("q".to_string()),
        Just("{".to_string()),
        Just("\n".to_string()),
        "[a-z é😀{}\\[\\]\":,]{0,10}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        text().prop_map(Value::from),
    ]
}

fn junk() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("chat".to_string()),
                    Just("content".to_string()),
                    Just("role".to_string()),
                    Just("id".to_string()),
                    Just("state".to_string()),
                    Just("inProgress".to_string()),
                    Just("buffer".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One frame: well-formed ones of every kind, with any field swapped for junk, or no JSON.
fn inner() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![Just("chat"), Just("thinking"), Just("tool_call")];
    (kind, "[mn]", text(), junk())
        .prop_map(|(k, id, t, j)| json!({"id": id, "type": k, "chat": {"content": t}, "extra": j}))
}

fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        inner().prop_map(|i| json!({"type": "update", "buffer": format!("{i}\n")}).to_string()),
        inner().prop_map(|i| json!({"type": "update", "buffer": i}).to_string()),
        text().prop_map(
            |t| json!({"type": "update", "buffer": json!({"role": "user",
            "content": [{"type": "text", "text": t}]}).to_string()})
            .to_string()
        ),
        (any::<Option<bool>>(), any::<Option<bool>>()).prop_map(|(p, c)| json!({"type": "state",
            "state": {"inProgress": p, "cancelled": c}})
        .to_string()),
        junk().prop_map(|j| json!({"type": "history", "messages": [j]}).to_string()),
        junk().prop_map(|j| json!({"type": "update", "buffer": j}).to_string()),
        junk().prop_map(|j| j.to_string()),
        text(),
    ]
}

/// A step of a socket's life: a frame, a reconnect, or arming the tracker.
#[derive(Debug, Clone)]
enum Step {
    Frame(String),
    Reconnect,
    Arm,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => frame().prop_map(Step::Frame),
        1 => Just(Step::Reconnect),
        1 => Just(Step::Arm),
    ]
}

proptest! {
    #![proptest_config(Config { cases: 512, failure_persistence: None, ..Config::default() })]

    #[test]
    fn any_frames_any_reconnects_never_panic_and_end_at_most_once(
        armed in any::<bool>(),
        steps in prop::collection::vec(step(), 0..40),
    ) {
        let mut t = TurnTracker::new("q", armed);
        let mut finished = 0;
        for s in steps {
            match s {
                Step::Arm => t.arm(),
                Step::Reconnect => {
                    if t.can_resume() {
                        t.reconnected();
                    }
                }
                Step::Frame(f) => {
                    let failed = t.resume_failed().is_some();
                    let evs = t.feed(&f);
                    prop_assert!(finished == 0 || evs.is_empty(), "events after the end: {:?}", evs);
                    prop_assert!(!failed || evs.is_empty(), "events after a failed resume: {:?}", evs);
                    finished += evs.iter().filter(|e| matches!(e, TurnEvent::Finished { .. })).count();
                }
            }
        }
        prop_assert!(finished <= 1);
        prop_assert_eq!(finished == 1, t.is_finished());
    }

    #[test]
    fn deltas_arrive_exactly_once_in_order(
        first in "[A-Z][a-z]{0,6}",
        rest in prop::collection::vec(" [a-zé😀]{0,6}", 0..20),
    ) {
        let mut t = TurnTracker::new("q", true);
        let mut frames = vec![json!({"type": "state", "state": {"inProgress": true}}).to_string()];
        for d in std::iter::once(&first).chain(&rest) {
            let inner = json!({"id": "m", "type": "chat", "chat": {"content": d}});
            frames.push(json!({"type": "update", "buffer": format!("{inner}\n")}).to_string());
        }
        frames.push(json!({"type": "state", "state": {"inProgress": false}}).to_string());
        let mut got = String::new();
        let mut ended = false;
        for f in &frames {
            for e in t.feed(f) {
                match e {
                    TurnEvent::Content(c) => got.push_str(&c),
                    TurnEvent::Finished { .. } => ended = true,
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
        prop_assert!(ended);
        prop_assert_eq!(got, format!("{first}{}", rest.concat()));
    }

    #[test]
    fn any_snapshot_is_read_without_panicking(snapshot in junk(), seen in text()) {
        if let Some(found) = super::snapshot::continuation(&snapshot, &seen) {
            prop_assert!(found.starts_with(&seen) && !seen.is_empty());
        }
        let _ = super::snapshot::ids(&snapshot);
    }
}
