//! The task that streams a turn: appends the turn to its history, then its frames one by one
//! at the configured pace, and drops them again once the turn is long finished.

use std::sync::Arc;
use std::time::Duration;

use super::Faults;
use super::model::answer;
use super::script::{Script, Shape, turn_frames};
use super::state::{History, SimState, Turn};
use super::util::lock;

/// How long a finished turn keeps its serialized frames before they are dropped (and rebuilt
/// on demand for a late replay): bounds the memory of long benchmark runs.
const FRAME_RETENTION: Duration = Duration::from_secs(30);

/// Appends a new turn to `hist` and, unless it is silent, spawns the task that streams its
/// frames. Returns the 1-based turn number.
pub(crate) fn start_turn(
    st: &Arc<SimState>,
    hist: &Arc<History>,
    prompt: String,
    faults: &Faults,
) -> u32 {
    let (n, index, script) = {
        let mut log = lock(&hist.log);
        let index = log.turns.len();
        let n = index as u32 + 1;
        let earlier: Vec<&str> = log.turns.iter().map(|t| t.prompt.as_str()).collect();
        let answer = answer(&earlier, &prompt, n, st.cfg.reply_words);
        let script = Script::new(n, Shape::from_faults(faults), answer.split);
        log.turns.push(Turn {
            prompt: prompt.clone(),
            reply: answer.text,
            script: script.clone(),
            frames: Vec::new(),
            done: false,
            compacted: false,
            silent: faults.silent,
        });
        (n, index, script)
    };
    hist.notify();
    if faults.silent {
        return n;
    }
    let delay = st.cfg.frame_delay + Duration::from_millis(faults.slow_frame_ms);
    let hist = Arc::clone(hist);
    let cancel = st.cancel.clone();
    tokio::spawn(async move {
        let reply = lock(&hist.log).turns[index].reply.clone();
        let frames = turn_frames(&script, &prompt, &reply);
        let total = frames.len();
        for (i, frame) in frames.into_iter().enumerate() {
            if i > 0 {
                if delay.is_zero() {
                    if i % 32 == 0 {
                        tokio::task::yield_now().await;
                    }
                } else {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => return,
                    }
                }
            }
            {
                let mut log = lock(&hist.log);
                let Some(turn) = log.turns.get_mut(index) else {
                    return;
                };
                turn.frames.push(frame);
                turn.done = i + 1 == total;
            }
            hist.notify();
        }
        tokio::select! {
            () = tokio::time::sleep(FRAME_RETENTION) => {}
            () = cancel.cancelled() => return,
        }
        if let Some(turn) = lock(&hist.log).turns.get_mut(index) {
            turn.frames = Vec::new();
            turn.compacted = true;
        }
    });
    n
}
