//! [`Pending`]: the embedded store's conversation writes that are queued for the writer thread
//! but not yet committed, so that reads see them (read-your-writes).
//!
//! A put or take answers as soon as its write is queued; the writer commits it a moment later.
//! Until then this overlay is the truth for the keys it holds: a follow-up request sent right
//! after `[DONE]` finds the mapping its answer just queued, and a mapping taken but not yet
//! deleted from the file is not handed out twice. Each entry carries the sequence number of the
//! latest queued write of its key; the writer drops an entry once the write with that number is
//! settled (committed, or failed: then the file is the truth again), and leaves it when a newer
//! write of the key was queued meanwhile.
//!
//! Stamps are given here, when a put is queued, so that they stay strictly increasing in queue
//! order (the writer applies writes in that order).

use std::collections::HashMap;

use super::{ConversationRecord, next_stamp};

/// The latest queued write of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// Sequence number of that write.
    pub seq: u64,
    /// `Some((stamp, record))` for a put, `None` for a take (the key is gone).
    pub value: Option<(u64, ConversationRecord)>,
}

/// Queued, uncommitted conversation writes, keyed by conversation key.
#[derive(Debug, Default)]
pub(super) struct Pending {
    entries: HashMap<String, Entry>,
    /// Sequence number of the latest queued write.
    seq: u64,
    /// The newest stamp given, in the file or here.
    newest_stamp: Option<u64>,
}

impl Pending {
    /// An empty overlay over a file whose newest stamp is `newest_stamp`.
    pub fn new(newest_stamp: Option<u64>) -> Pending {
        Pending {
            newest_stamp,
            ..Pending::default()
        }
    }

    /// Records a put queued at `now` (ms); returns its sequence number and stamp.
    pub fn put(&mut self, key: &str, record: &ConversationRecord, now: u64) -> (u64, u64) {
        let stamp = next_stamp(now, self.newest_stamp);
        self.newest_stamp = Some(stamp);
        self.seq += 1;
        let entry = Entry {
            seq: self.seq,
            value: Some((stamp, record.clone())),
        };
        self.entries.insert(key.to_string(), entry);
        (self.seq, stamp)
    }

    /// Records a take (the key is gone from now on); returns its sequence number.
    pub fn take(&mut self, key: &str) -> u64 {
        self.seq += 1;
        let entry = Entry {
            seq: self.seq,
            value: None,
        };
        self.entries.insert(key.to_string(), entry);
        self.seq
    }

    /// The latest queued write of `key`, if one is not settled yet.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The write `seq` of `key` is settled: the entry goes unless a newer write replaced it.
    pub fn settled(&mut self, key: &str, seq: u64) {
        if self.entries.get(key).is_some_and(|e| e.seq == seq) {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{Generation, HistoryRef};

    fn record(n: u32) -> ConversationRecord {
        ConversationRecord {
            account_id: "a".into(),
            history: HistoryRef {
                generation: Generation::Gen1,
                chat_history_id: format!("h{n}"),
                workspace_id: None,
            },
            turns: n,
            model: "m".into(),
            last_used_ms: 0,
            transcript: None,
        }
    }

    #[test]
    fn a_settled_write_leaves_only_when_no_newer_write_replaced_it() {
        let mut p = Pending::new(None);
        let (put, _) = p.put("k", &record(1), 100);
        let take = p.take("k");
        p.settled("k", put);
        assert_eq!(
            p.get("k").map(|e| e.value.clone()),
            Some(None),
            "the take stays"
        );
        p.settled("k", take);
        assert!(p.get("k").is_none());
    }

    #[test]
    fn stamps_increase_in_queue_order_from_the_file_s_newest() {
        let mut p = Pending::new(Some(500));
        let (_, a) = p.put("a", &record(1), 100);
        let (_, b) = p.put("b", &record(2), 100);
        let (_, c) = p.put("c", &record(3), 900);
        assert_eq!((a, b, c), (501, 502, 900));
        assert_eq!(
            p.get("b").and_then(|e| e.value.clone()),
            Some((502, record(2)))
        );
    }
}
