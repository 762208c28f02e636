//! [`CliAccount`]: one `cto login` as the proxy holds it (a label, a stable id that is no
//! secret, and its [`TokenHolder`]), and the `ses_…` session ids the door's headers carry.
//!
//! The id cannot be derived from the current refresh token, which rotates: it is a hash of the
//! first token the operator gave ([`seed_hash`]), like a cookie account's `seed_hash`, and is
//! kept with the account's record so a restart with a rotated token keeps the same id.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::credentials::Credentials;
use super::token::{RefreshStore, TokenHolder};

/// The store key of a CLI login: a hash prefix of the refresh token as first pasted (never
/// the token itself). A prefix of its own keeps it apart from cookie accounts' keys.
pub fn seed_hash(first_refresh_token: &str) -> String {
    let digest = Sha256::digest(format!("el2a-cli-seed:{}", first_refresh_token.trim()));
    format!("cli_{}", hex(&digest[..12]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `x-session-id` for a client conversation: `ses_` and 26 characters derived from `key`
/// (the same key, the same id, so one conversation keeps one upstream session). The shape
/// follows opencode's ids, 12 hex digits then 14 base62 characters (G: the notes show only
/// `ses_<random>`).
pub fn session_id(key: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::digest(format!("el2a-cli-session:{key}"));
    let tail: String = digest[6..20]
        .iter()
        .map(|b| char::from(BASE62[usize::from(*b) % BASE62.len()]))
        .collect();
    format!("ses_{}{tail}", hex(&digest[..6]))
}

/// One CLI login. Cheap to share behind an `Arc`.
pub struct CliAccount {
    id: String,
    label: String,
    tokens: TokenHolder,
}

impl std::fmt::Debug for CliAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliAccount")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl CliAccount {
    /// A login pasted now: its id is the [`seed_hash`] of its refresh token.
    pub fn new(label: &str, credentials: &Credentials, store: Arc<dyn RefreshStore>) -> Self {
        let id = seed_hash(credentials.refresh_token.expose());
        Self::with_id(&id, label, credentials, store)
    }

    /// A login restored from its record: the id it was given first, the token stored last.
    pub fn with_id(
        id: &str,
        label: &str,
        credentials: &Credentials,
        store: Arc<dyn RefreshStore>,
    ) -> Self {
        CliAccount {
            id: id.to_string(),
            label: label.to_string(),
            tokens: TokenHolder::new(id, credentials, store),
        }
    }

    /// Stable, not secret: the store key and the name in logs and metrics.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn tokens(&self) -> &TokenHolder {
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::cli::NoStore;

    #[test]
    fn session_ids_are_stable_per_key_and_shaped_like_opencode_s() {
        let a = session_id("conversation-1");
        assert_eq!(a, session_id("conversation-1"));
        assert_ne!(a, session_id("conversation-2"));
        assert_eq!(a.len(), 4 + 26);
        let body = &a["ses_".len()..];
        assert!(body[..12].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert!(body[12..].chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
    }

    #[test]
    fn the_id_is_a_hash_of_the_first_token_and_survives_restoring() {
        let first = Credentials::parse("rt_first").expect("token");
        let acc = CliAccount::new("work", &first, Arc::new(NoStore));
        assert_eq!(acc.id(), seed_hash("rt_first"));
        assert_eq!(seed_hash(" rt_first\n"), seed_hash("rt_first"));
        assert!(!acc.id().contains("rt_first"));
        let rotated = Credentials::parse("rt_rotated").expect("token");
        let restored = CliAccount::with_id(acc.id(), "work", &rotated, Arc::new(NoStore));
        assert_eq!(restored.id(), acc.id());
        assert_eq!(restored.tokens().refresh_token().expose(), "rt_rotated");
        assert!(!format!("{restored:?}").contains("rt_"), "{restored:?}");
    }
}
