//! The embedded store's redb tables and the transaction steps that change them, shared by the
//! store (`embedded`), its writer thread (`writer`) and the file handle (`redb_file`, which
//! creates the tables on open).
//!
//! Tables:
//! - `conversations`: key -> (use stamp, JSON of the [`ConversationRecord`](super::ConversationRecord));
//! - `conversations_lru`: (use stamp, key) -> (), oldest first, for expiry and LRU eviction;
//! - `accounts`: seed_hash -> JSON of the [`AccountRecord`](super::AccountRecord);
//! - `secrets`: name -> bytes (see [`Store::secret`](super::Store::secret));
//! - `health`: one probe row, written when the file is reopened after an I/O error.

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::StoreLimits;

pub(super) const CONVERSATIONS: TableDefinition<&str, (u64, &[u8])> =
    TableDefinition::new("conversations");
pub(super) const LRU: TableDefinition<(u64, &str), ()> = TableDefinition::new("conversations_lru");
pub(super) const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
pub(super) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
pub(super) const HEALTH: TableDefinition<&str, u64> = TableDefinition::new("health");

/// Removes a mapping and its LRU entry inside `txn`, returning its stamp and JSON.
pub(super) fn remove_conversation(
    txn: &WriteTransaction,
    key: &str,
) -> Result<Option<(u64, Vec<u8>)>, redb::Error> {
    let mut conversations = txn.open_table(CONVERSATIONS)?;
    let removed = conversations.remove(key)?.map(|guard| {
        let (stamp, json) = guard.value();
        (stamp, json.to_vec())
    });
    if let Some((stamp, _)) = &removed {
        let mut lru = txn.open_table(LRU)?;
        lru.remove((*stamp, key))?;
    }
    Ok(removed)
}

/// Writes (or replaces) a mapping with the stamp it was given when it was queued, then evicts
/// the oldest mappings over the cap.
pub(super) fn put_conversation(
    txn: &WriteTransaction,
    key: &str,
    stamp: u64,
    json: &[u8],
    limits: StoreLimits,
) -> Result<(), redb::Error> {
    remove_conversation(txn, key)?;
    let mut conversations = txn.open_table(CONVERSATIONS)?;
    let mut lru = txn.open_table(LRU)?;
    conversations.insert(key, (stamp, json))?;
    lru.insert((stamp, key), ())?;
    while conversations.len()? > limits.max_conversations as u64 {
        let oldest = lru.pop_first()?.map(|(k, _)| k.value().1.to_string());
        let Some(oldest) = oldest else { break };
        conversations.remove(oldest.as_str())?;
    }
    Ok(())
}

/// A stored mapping's stamp and JSON, read without a write transaction.
pub(super) fn read_conversation(
    db: &Database,
    key: &str,
) -> Result<Option<(u64, Vec<u8>)>, redb::Error> {
    let txn = db.begin_read()?;
    let conversations = txn.open_table(CONVERSATIONS)?;
    let found = conversations.get(key)?;
    Ok(found.map(|guard| {
        let (stamp, json) = guard.value();
        (stamp, json.to_vec())
    }))
}

/// The newest use stamp in the file, so that stamps given after a start keep increasing.
pub(super) fn newest_stamp(db: &Database) -> Result<Option<u64>, redb::Error> {
    let txn = db.begin_read()?;
    let lru = txn.open_table(LRU)?;
    Ok(lru.last()?.map(|(k, _)| k.value().0))
}
