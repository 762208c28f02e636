//! [`Account`]: one cto.new login as the client holds it: the rotating `__client` cookie
//! (published on a watch channel so the owner can persist rotations), the identity discovered
//! from Clerk, the cached JWT and the locks that keep minting and model switching orderly.
//!
//! Nothing here does I/O; the Clerk calls that fill it in live in [`super::clerk`].

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::transport::Reply;
use super::{UpstreamError, cookie, jwt};

/// What `GET /v1/client` told us about the cookie's signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub session_id: String,
    pub user_id: String,
    pub org_id: Option<String>,
}

/// A minted token and its decoded claims.
pub(super) struct CachedJwt {
    pub(super) token: String,
    pub(super) claims: jwt::Claims,
}

/// One cto.new account: its (rotating) cookie, discovered identity and cached JWT.
/// Cheap to share behind an `Arc`; all interior state is synchronised.
pub struct Account {
    label: String,
    /// The current `__client` value; replaced whenever Clerk rotates it.
    client_cookie: Mutex<String>,
    /// Publishes every rotation so the owner can persist it.
    cookie_tx: watch::Sender<String>,
    /// Session, user and org, once known.
    pub(super) identity: Mutex<Option<Identity>>,
    /// A session id persisted from an earlier run: lets the first mint skip discovery.
    pub(super) session_hint: Mutex<Option<String>>,
    /// The cached token (`None` after `invalidate_jwt`).
    pub(super) jwt: Mutex<Option<CachedJwt>>,
    /// The last token minted, kept for Clerk's `expired_token` retry even after invalidation.
    pub(super) last_jwt: Mutex<Option<String>>,
    /// Single-flight: concurrent requests wait for one mint instead of each minting.
    pub(super) mint_lock: tokio::sync::Mutex<()>,
    pub(super) mints: AtomicU64,
    /// Gen-2: the team's preferred model as we last set it. Triggers for the model in place
    /// share a read guard until they are answered; switching takes the write guard, so a
    /// switch never lands between another request's PATCH and its trigger.
    pub(crate) model_lock: tokio::sync::RwLock<Option<String>>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("label", &self.label)
            .field("cookie", &"<redacted>")
            .field("identity", &self.identity())
            .field("mints", &self.mint_count())
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Parses the cookie (a whole browser `Cookie:` header or a bare `__client` value).
    pub fn new(label: &str, cookie: &str) -> Result<Self, UpstreamError> {
        Self::with_session(label, cookie, None)
    }

    /// Like [`Account::new`], starting from a session id persisted earlier (skips discovery
    /// until Clerk says the session is gone).
    pub fn with_session(
        label: &str,
        cookie: &str,
        session_id: Option<String>,
    ) -> Result<Self, UpstreamError> {
        let client = cookie::parse_pasted_cookie(cookie)?;
        let (cookie_tx, _) = watch::channel(client.clone());
        Ok(Account {
            label: label.to_string(),
            client_cookie: Mutex::new(client),
            cookie_tx,
            identity: Mutex::new(None),
            session_hint: Mutex::new(session_id.filter(|s| !s.is_empty())),
            jwt: Mutex::new(None),
            last_jwt: Mutex::new(None),
            mint_lock: tokio::sync::Mutex::new(()),
            mints: AtomicU64::new(0),
            model_lock: tokio::sync::RwLock::new(None),
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The latest `__client` value (rotated by Clerk's `Set-Cookie`).
    pub fn current_client_cookie(&self) -> String {
        lock(&self.client_cookie).clone()
    }

    /// A receiver that sees every new `__client` value, to persist rotations.
    pub fn subscribe_cookie(&self) -> watch::Receiver<String> {
        self.cookie_tx.subscribe()
    }

    /// The identity discovered so far, if any.
    pub fn identity(&self) -> Option<Identity> {
        lock(&self.identity).clone()
    }

    /// How many JWTs were minted for this account (for tests and metrics).
    pub fn mint_count(&self) -> u64 {
        self.mints.load(Ordering::Relaxed)
    }

    /// Drops the cached JWT, e.g. after EngineLabs refused it; the next call mints anew.
    pub fn invalidate_jwt(&self) {
        *lock(&self.jwt) = None;
    }

    /// The cached token if it still has enough time left.
    pub(super) fn fresh_jwt(&self) -> Option<String> {
        let now = unix_now();
        lock(&self.jwt)
            .as_ref()
            .filter(|c| c.claims.reusable_at(now))
            .map(|c| c.token.clone())
    }

    /// Adopts a rotated `__client` from an answer's `Set-Cookie`, if any.
    pub(super) fn adopt_cookies(&self, reply: &Reply) {
        if let Some(new) = cookie::client_from_headers(&reply.headers) {
            let changed = {
                let mut current = lock(&self.client_cookie);
                if *current == new {
                    false
                } else {
                    *current = new.clone();
                    true
                }
            };
            if changed {
                tracing::debug!(account = %self.label, "Clerk rotated the __client cookie");
                self.cookie_tx.send_replace(new);
            }
        }
    }
}

/// Locks a std mutex, recovering from poisoning (the data is plain values, always consistent).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_cookie() {
        let a = Account::new("main", "a=b; __client=SECRETVALUE").expect("account");
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("SECRETVALUE"), "{dbg}");
        assert!(dbg.contains("main"));
        assert_eq!(a.current_client_cookie(), "SECRETVALUE");
    }

    #[test]
    fn bad_cookie_is_rejected_at_construction() {
        assert!(matches!(
            Account::new("x", "a=b"),
            Err(UpstreamError::BadCookie(_))
        ));
    }

    #[test]
    fn invalidate_and_rotation() {
        let a = Account::new("x", "__client=one").expect("account");
        let mut rx = a.subscribe_cookie();
        let mut headers = ::http::HeaderMap::new();
        headers.append(
            ::http::header::SET_COOKIE,
            "__client=two; Path=/".parse().expect("hv"),
        );
        a.adopt_cookies(&Reply {
            status: 200,
            headers,
            body: String::new(),
        });
        assert_eq!(a.current_client_cookie(), "two");
        assert!(rx.has_changed().expect("open"));
        assert_eq!(*rx.borrow_and_update(), "two");
        a.invalidate_jwt();
        assert!(a.fresh_jwt().is_none());
    }
}
