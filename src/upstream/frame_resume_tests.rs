//! The tracker across a reconnect, frame by frame: a Gen-1 replay delivers each piece once.

use super::super::TurnEvent;
use super::TurnTracker;
use crate::upstream::test_frames::{DONE, chat, content, echo, run, state};

fn gen1_turn(prompt: &str, words: &[&str]) -> Vec<String> {
    let mut frames = vec![state(true), echo(prompt)];
    frames.extend(words.iter().map(|w| chat("m", w)));
    frames.push(state(false));
    frames
}

fn text_of(evs: &[TurnEvent]) -> String {
    evs.iter()
        .filter_map(|e| match e {
            TurnEvent::Content(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_gen1_replay_after_a_drop_mid_turn_delivers_each_piece_once() {
    let words = ["Turn", " 1:", " you", " said", " hi"];
    let frames = gen1_turn("hi", &words);
    let mut t = TurnTracker::new("hi", true);
    assert!(t.can_resume());
    // Connect preamble (running turn), then the turn until the drop after 3 words.
    let mut evs = run(&mut t, &[state(true)]);
    evs.extend(run(&mut t, &frames[..5]));
    assert_eq!(text_of(&evs), "Turn 1: you");
    t.reconnected();
    // The new socket's preamble then the whole turn from its start.
    let mut after = run(&mut t, &[state(true)]);
    after.extend(run(&mut t, &frames));
    assert_eq!(text_of(&after), " said hi");
    assert_eq!(after.last(), Some(&DONE));
    assert!(t.is_finished());
}

#[test]
fn a_gen1_reconnect_after_the_turn_ended_ignores_the_idle_state_at_connect() {
    let frames = gen1_turn("hi", &["a", "b", "c"]);
    let mut t = TurnTracker::new("hi", true);
    let evs = run(&mut t, &frames[..3]);
    assert_eq!(text_of(&evs), "a");
    t.reconnected();
    // The turn finished meanwhile: the preamble says idle, then the turn is replayed.
    assert!(t.feed(&state(false)).is_empty());
    assert!(!t.is_finished());
    let after = run(&mut t, &frames);
    assert_eq!(after, vec![content("b"), content("c"), DONE]);
}

#[test]
fn a_drop_before_any_text_replays_everything() {
    let frames = gen1_turn("q", &["x", "y"]);
    let mut t = TurnTracker::new("q", true);
    assert!(run(&mut t, &frames[..2]).is_empty());
    assert!(!t.delivered_any());
    t.reconnected();
    assert_eq!(run(&mut t, &frames), vec![content("x"), content("y"), DONE]);
    assert!(t.delivered_any());
}

#[test]
fn a_replay_with_cumulative_buffers_after_a_drop() {
    let frames: Vec<String> = [state(true), echo("q")]
        .into_iter()
        .chain(["Hello", "Hello wor", "Hello world"].map(|c| chat("m", c)))
        .chain([state(false)])
        .collect();
    let mut t = TurnTracker::new("q", true);
    assert_eq!(text_of(&run(&mut t, &frames[..4])), "Hello wor");
    t.reconnected();
    assert_eq!(run(&mut t, &frames), vec![content("ld"), DONE]);
}

#[test]
fn a_tracker_armed_after_connect_resumes_only_once_answer_text_was_delivered() {
    let mut t = TurnTracker::new("q", false);
    t.arm();
    assert!(!t.can_resume());
    t.feed(&chat("m", "a"));
    assert!(t.can_resume());
}
