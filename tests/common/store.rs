//! Records and limits for the store tests: the contract suite (tests/store.rs) and the checks
//! only one backend has (tests/store_embedded.rs, tests/store_redis.rs).

use std::time::Duration;

use enginelabs_2api::store::{AccountKind, AccountRecord, ConversationRecord, StoreLimits};
use enginelabs_2api::upstream::{Generation, HistoryRef};

pub fn record(n: u32) -> ConversationRecord {
    ConversationRecord {
        account_id: format!("acct-{n}"),
        history: HistoryRef {
            generation: if n.is_multiple_of(2) {
                Generation::Gen1
            } else {
                Generation::Gen2
            },
            chat_history_id: format!("history-{n}"),
            workspace_id: (n % 2 == 1).then(|| format!("ws-{n}")),
        },
        turns: n,
        model: "claude-sonnet-4-5".to_string(),
        last_used_ms: 1_700_000_000_000 + u64::from(n),
        transcript: n.is_multiple_of(3).then(|| format!("[{{\"n\":{n}}}]")),
    }
}

pub fn account(seed: &str, cookie: &str) -> AccountRecord {
    AccountRecord {
        seed_hash: seed.to_string(),
        account_id: Some(format!("id-{seed}")),
        label: Some(format!("label {seed}")),
        client_cookie: cookie.to_string(),
        session_id: Some(format!("sess_{seed}")),
        updated_ms: 1_700_000_000_000,
        disabled: false,
        kind: AccountKind::Web,
    }
}

/// A CLI login's record: the secret is its refresh token, the id its seed hash.
pub fn cli_account(seed: &str, refresh_token: &str) -> AccountRecord {
    AccountRecord {
        account_id: Some(seed.to_string()),
        session_id: None,
        kind: AccountKind::Cli,
        ..account(seed, refresh_token)
    }
}

pub fn long_ttl() -> StoreLimits {
    StoreLimits::default()
}

pub fn short_ttl() -> StoreLimits {
    StoreLimits {
        conversation_ttl: Duration::from_secs(1),
        ..StoreLimits::default()
    }
}

pub fn cap(max: usize) -> StoreLimits {
    StoreLimits {
        max_conversations: max,
        ..StoreLimits::default()
    }
}
