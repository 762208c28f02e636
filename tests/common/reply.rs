//! What a default simulator answers, for tests that check a reply word for word against
//! `simulator::reply_text`.

use enginelabs_2api::simulator::SimConfig;

/// Words in each reply of a simulator started with `SimConfig::default()`.
pub fn words() -> usize {
    SimConfig::default().reply_words
}
