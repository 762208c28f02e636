//! Tests of [`super::TurnTracker`], named after behaviours.

use super::*;
use crate::upstream::test_frames::*;
use serde_json::json;

#[test]
fn a_plain_turn() {
    let mut t = TurnTracker::new("hi", true);
    let evs = run(
        &mut t,
        &[
            state(false),
            echo("hi"),
            state(true),
            chat("m1", "Hello"),
            chat("m1", " there"),
            json!({"type": "label", "label": "Greeting"}).to_string(),
            json!({"type": "state", "state": {"inProgress": false, "cancelled": false}})
                .to_string(),
        ],
    );
    assert_eq!(evs, vec![content("Hello"), content(" there"), DONE]);
    assert!(t.is_finished());
    assert!(t.feed(&chat("m1", "late")).is_empty());
}

#[test]
fn idle_state_at_connect_is_ignored() {
    let mut t = TurnTracker::new("hi", true);
    assert!(t.feed(&state(false)).is_empty());
    assert!(
        t.feed(&json!({"type":"state","state":{"inProgress":false,"cancelled":true}}).to_string())
            .is_empty()
    );
    assert!(!t.is_finished());
    assert_eq!(t.feed(&chat("m", "x")), vec![content("x")]);
    // Without any inProgress:true, emitted content is enough to end on inProgress:false.
    assert_eq!(t.feed(&state(false)), vec![DONE]);
}

#[test]
fn in_progress_then_idle_ends_even_without_content() {
    let mut t = TurnTracker::new("hi", true);
    assert_eq!(run(&mut t, &[state(true), state(false)]), vec![DONE]);
}

#[test]
fn cumulative_buffers_emit_only_suffixes() {
    let mut t = TurnTracker::new("p", true);
    let evs = run(
        &mut t,
        &[
            chat("m", "Hello"),
            chat("m", "Hello wor"),
            chat("m", "Hello world, friend"),
            // A resent snapshot longer than 8 characters adds nothing.
            chat("m", "Hello world, friend"),
        ],
    );
    assert_eq!(
        evs,
        vec![content("Hello"), content(" wor"), content("ld, friend")]
    );
}

#[test]
fn short_repeated_chunks_are_deltas() {
    let mut t = TurnTracker::new("p", true);
    let evs = run(&mut t, &[chat("m", "ha"), chat("m", "ha"), chat("m", "ha")]);
    assert_eq!(evs, vec![content("ha"), content("ha"), content("ha")]);
}

#[test]
fn accumulation_is_per_id_and_kind() {
    let mut t = TurnTracker::new("p", true);
    let evs = run(
        &mut t,
        &[
            thinking("m1", "Let me think"),
            thinking("m1", " more"),
            chat("m1", "Let me think about it"),
            chat("m2", "Answer"),
            chat("m2", "Answer!"),
        ],
    );
    assert_eq!(
        evs,
        vec![
            TurnEvent::Reasoning("Let me think".into()),
            TurnEvent::Reasoning(" more".into()),
            // Another kind: not a continuation of the thinking text.
            content("Let me think about it"),
            content("Answer"),
            content("!"),
        ]
    );
}

#[test]
fn our_echo_is_not_forwarded() {
    let mut t = TurnTracker::new("  hi there \n", true);
    let evs = run(&mut t, &[echo("hi there"), chat("m", "yo")]);
    assert_eq!(evs, vec![content("yo")]);
}

#[test]
fn replayed_foreign_turn_is_ignored() {
    let mut t = TurnTracker::new("second question", true);
    let evs = run(
        &mut t,
        &[
            state(false),
            echo("first question"),
            chat("old", "old answer"),
            state(false),
            echo("second question"),
            chat("new", "new answer"),
            state(false),
        ],
    );
    assert_eq!(evs, vec![content("new answer"), DONE]);
}

#[test]
fn foreign_mode_ends_on_in_progress() {
    let mut t = TurnTracker::new("mine", true);
    let evs = run(
        &mut t,
        &[
            echo("transformed by the server"),
            chat("a", "ignored"),
            state(true),
            chat("b", "counted"),
            state(false),
        ],
    );
    assert_eq!(evs, vec![content("counted"), DONE]);
}

#[test]
fn unarmed_frames_are_history() {
    let mut t = TurnTracker::new("q", false);
    assert!(!t.is_armed());
    let evs = run(&mut t, &[state(true), chat("old", "old"), state(false)]);
    assert!(evs.is_empty());
    assert!(!t.is_finished());
    t.arm();
    let evs = run(
        &mut t,
        &[state(false), state(true), chat("n", "new"), state(false)],
    );
    assert_eq!(evs, vec![content("new"), DONE]);
}

#[test]
fn cancelled_turn() {
    let mut t = TurnTracker::new("q", true);
    let evs = run(
        &mut t,
        &[
            state(true),
            chat("m", "part"),
            json!({"type":"state","state":{"inProgress":false,"cancelled":true,"taskId":"t"}})
                .to_string(),
        ],
    );
    assert_eq!(
        evs,
        vec![content("part"), TurnEvent::Finished { cancelled: true }]
    );
}

#[test]
fn noise_is_ignored() {
    let mut t = TurnTracker::new("q", true);
    let evs = run(
        &mut t,
        &[
            "pong".to_string(),
            "not json at all".to_string(),
            json!({"type": "history", "messages": [{"type": "chat", "chat": {"content": "old"}}]})
                .to_string(),
            json!({"type": "label", "label": "x"}).to_string(),
            json!({"type": "whatever", "buffer": "x"}).to_string(),
            json!({"no": "type"}).to_string(),
            update(json!({"id": "t", "type": "tool_call", "chat": {"content": "ls"}})),
            json!({"type": "update", "buffer": "{broken"}).to_string(),
            json!({"type": "update"}).to_string(),
        ],
    );
    assert!(evs.is_empty(), "{evs:?}");
    assert!(!t.is_finished());
}

#[test]
fn multi_line_buffer() {
    let mut t = TurnTracker::new("q", true);
    let buffer = format!(
        "{}\n{}\n\n{}\n",
        json!({"role": "user", "content": [{"type": "text", "text": "q"}]}),
        json!({"id": "m", "type": "thinking", "chat": {"content": "hmm"}}),
        json!({"id": "m", "type": "chat", "chat": {"content": "ok"}}),
    );
    let frame = json!({"type": "update", "buffer": buffer}).to_string();
    assert_eq!(
        t.feed(&frame),
        vec![TurnEvent::Reasoning("hmm".into()), content("ok")]
    );
}

#[test]
fn object_buffer() {
    let mut t = TurnTracker::new("q", true);
    let frame = json!({"type": "update",
        "buffer": {"id": "m", "type": "chat", "chat": {"content": "obj"}}})
    .to_string();
    assert_eq!(t.feed(&frame), vec![content("obj")]);
}

/// Gen-2 after a reconnect: the `history` snapshot, whatever its shape, then live frames.
mod gen2_resume {
    use super::*;

    fn snapshot(assistant: Value) -> String {
        json!({"type": "history", "messages": [{"role": "user", "content": "q"}, assistant]})
            .to_string()
    }

    /// A Gen-2 tracker that delivered "Hello wor" of message `m`, then lost its socket.
    fn dropped_mid_answer() -> TurnTracker {
        let mut t = TurnTracker::new("q", false);
        assert!(t.feed(&state(false)).is_empty());
        t.arm();
        let evs = run(
            &mut t,
            &[state(true), chat("m", "Hello"), chat("m", " wor")],
        );
        assert_eq!(evs, vec![content("Hello"), content(" wor")]);
        assert!(t.can_resume());
        t.reconnected();
        t
    }

    #[test]
    fn a_reconnect_mid_answer_hands_on_the_snapshot_rest_then_the_live_frames() {
        let mut t = dropped_mid_answer();
        assert!(t.feed(&state(true)).is_empty());
        let snap = snapshot(json!({"id": "m", "role": "assistant", "inProgress": true,
            "parts": [{"type": "text", "text": "Hello world, fri"}]}));
        assert_eq!(t.feed(&snap), vec![content("ld, fri")]);
        let evs = run(&mut t, &[chat("m", "end"), state(false)]);
        assert_eq!(evs, vec![content("end"), DONE]);
        assert!(t.resume_failed().is_none());
    }

    #[test]
    fn a_turn_that_ended_while_no_socket_was_open_finishes_from_the_snapshot() {
        let mut t = dropped_mid_answer();
        assert!(
            t.feed(&state(false)).is_empty(),
            "idle at connect is no end yet"
        );
        let snap = snapshot(json!({"role": "assistant", "content": "Hello world."}));
        assert_eq!(t.feed(&snap), vec![content("ld."), DONE]);
        assert!(t.is_finished());
    }

    #[test]
    fn a_snapshot_first_then_the_idle_state_ends_the_turn() {
        let mut t = dropped_mid_answer();
        let snap = snapshot(json!({"role": "assistant", "content": "Hello world."}));
        assert_eq!(t.feed(&snap), vec![content("ld.")]);
        assert_eq!(t.feed(&state(false)), vec![DONE]);
    }

    #[test]
    fn a_snapshot_without_the_answer_so_far_fails_the_resume() {
        let mut t = dropped_mid_answer();
        let snap = snapshot(json!({"role": "assistant", "content": "Something else"}));
        assert!(t.feed(&snap).is_empty());
        let why = t.resume_failed().expect("resume failed");
        assert!(why.contains("cannot resume"), "{why}");
        assert!(
            t.feed(&chat("m", "ld")).is_empty(),
            "nothing after a failure"
        );
    }

    #[test]
    fn live_frames_without_a_snapshot_fail_the_resume() {
        let mut t = dropped_mid_answer();
        assert!(run(&mut t, &[state(true), chat("m", "ld")]).is_empty());
        assert!(t.resume_failed().is_some());
    }

    #[test]
    fn a_drop_during_reasoning_or_before_any_text_cannot_be_resumed() {
        let mut t = TurnTracker::new("q", false);
        t.arm();
        assert!(!t.can_resume(), "nothing to find the answer by");
        run(&mut t, &[state(true), thinking("m", "Let me see")]);
        assert!(
            !t.can_resume(),
            "the answer may begin while no socket is open"
        );
    }

    #[test]
    fn a_message_that_began_while_no_socket_was_open_fails_the_resume() {
        let mut t = dropped_mid_answer();
        let snap = json!({"type": "history", "messages": [
            {"id": "m", "role": "assistant", "content": "Hello world."},
            {"id": "m2", "role": "assistant", "content": "Step two"}]})
        .to_string();
        assert_eq!(t.feed(&snap), vec![content("ld.")]);
        assert!(t.feed(&chat("m2", " continues")).is_empty());
        assert!(t.resume_failed().is_some());
        // A message the snapshot does not know began live: it is delivered whole.
        let mut t = dropped_mid_answer();
        t.feed(&snap);
        assert_eq!(t.feed(&chat("m3", "Fresh")), vec![content("Fresh")]);
    }
}
