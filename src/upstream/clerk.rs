//! TODO(upstream helper): session discovery and single-flight JWT minting.
//! The signatures below are the contract the server layer codes against.

use super::UpstreamError;

/// What `GET /v1/client` told us about the cookie's signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub session_id: String,
    pub user_id: String,
    pub org_id: Option<String>,
}

/// One cto.new account: its (rotating) cookie, discovered identity and cached JWT.
/// Cheap to share behind an `Arc`; all interior state is synchronised.
pub struct Account {
    label: String,
}

impl Account {
    /// Parses the cookie (a whole browser `Cookie:` header or a bare `__client` value).
    pub fn new(label: &str, cookie: &str) -> Result<Self, UpstreamError> {
        let _ = cookie;
        Ok(Account {
            label: label.to_string(),
        })
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The latest `__client` value (rotated by Clerk's `Set-Cookie`).
    pub fn current_client_cookie(&self) -> String {
        todo!()
    }
    /// The identity discovered so far, if any.
    pub fn identity(&self) -> Option<Identity> {
        todo!()
    }
    /// How many JWTs were minted for this account (for tests and metrics).
    pub fn mint_count(&self) -> u64 {
        todo!()
    }
}

impl Account {
    /// Starts from a persisted cookie and session id.
    pub fn with_session(
        label: &str,
        cookie: &str,
        session_id: Option<String>,
    ) -> Result<Self, UpstreamError> {
        let _ = session_id;
        Self::new(label, cookie)
    }
    /// Changes whenever Clerk rotates `__client`.
    pub fn subscribe_cookie(&self) -> tokio::sync::watch::Receiver<String> {
        todo!()
    }
}
