//! [`TokenHolder`]: one CLI account's tokens. It hands out a valid access token, refreshing
//! it shortly before it expires (or at once after the API refused it), one refresh at a time
//! per account, and keeps the rotating refresh token current.
//!
//! # Why single flight
//! The refresh token rotates on every use and a spent one is refused (protocol notes §10 \[G\];
//! the simulator does exactly that). Two refreshes racing with the same token would kill the
//! login: the loser spends a dead token. So one refresh runs at a time; requests that waited for
//! it share its outcome, success or failure, instead of each trying again.
//!
//! # Rotations and the store
//! The account's [`RefreshStore`] is where the token lives between runs and between replicas,
//! and each refresh goes through it, inside the single flight:
//! 1. [`RefreshStore::begin`]: a guard held until the refresh is over (a store shared by
//!    replicas locks the account, so the single flight spans them);
//! 2. [`RefreshStore::current`]: if the store holds a token other than ours, another replica
//!    rotated it and ours is spent: the stored one is adopted before anything is spent;
//! 3. the refresh call; then [`RefreshStore::rotated`] gets the spent token with the new one:
//!    "store `fresh` only if the stored token is still `spent`" is the compare-and-set that
//!    keeps a slower replica (or a late write) from putting a spent token back.
//!
//! When the door refuses the token anyway, the store is asked once more (a replica that did not
//! get the lock may have rotated it meanwhile) and a newer token gets one try.
//!
//! Tokens this holder spent or replaced are never adopted from the store again: a store write
//! that failed leaves a spent token there, and going back to it would kill the login.
//!
//! # Why the refresh runs in a task of its own
//! A caller may give up (its client went away) at any moment. Once the refresh call is sent, the
//! token is spent; if the rotation hand-off were cut off there, the new token would be lost and
//! the login with it. So the refresh and its hand-off run to the end in a spawned task that
//! holds the single flight, and callers only wait for its outcome.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::CliConfig;
use super::credentials::{Credentials, Secret};
use super::oauth::{self, CALL_TOKEN, Grant};
use crate::upstream::UpstreamError;
use crate::upstream::transport::Transport;

/// A refresh spent one refresh token and got another.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The account's stable id ([`super::CliAccount::id`]).
    pub account_id: String,
    /// The token the refresh spent (dead now): the compare-and-set's expected value.
    pub spent: Secret,
    /// The token to use next.
    pub fresh: Secret,
}

/// Whatever a [`RefreshStore`] holds while one refresh runs (a lock, say); dropped at its end.
pub type RefreshGuard = Box<dyn Any + Send>;

/// Where an account's refresh token is kept between runs and shared between replicas.
#[async_trait::async_trait]
pub trait RefreshStore: Send + Sync {
    /// Persist `rotation.fresh`, but only if the stored token is still `rotation.spent`.
    /// Called inside the account's single flight: rotations come one at a time, in order, and
    /// the next refresh waits for this call, so keep it short.
    async fn rotated(&self, rotation: &Rotation);

    /// The refresh token stored now, if any. Asked before each refresh and after the door
    /// refused ours: another replica (or the operator) may have stored a newer one.
    async fn current(&self) -> Option<Secret> {
        None
    }

    /// Called at the start of each refresh, inside the account's single flight; the guard is
    /// held until the refresh and its [`RefreshStore::rotated`] are over. A store shared between
    /// replicas locks the account here, so that two replicas never spend the same token. Wait
    /// a bounded time: every request of the account waits for this.
    async fn begin(&self) -> RefreshGuard {
        Box::new(())
    }
}

/// Rotations kept in memory only (tests, a run without a store).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoStore;

#[async_trait::async_trait]
impl RefreshStore for NoStore {
    async fn rotated(&self, _: &Rotation) {}
}

/// An access token and how long it is good for.
struct Cached {
    token: Secret,
    expires: Instant,
    /// Its whole lifetime as granted (bounds the refresh margin).
    lifetime: Duration,
}

impl Cached {
    /// Still good for more than the margin (at most half its lifetime) at `now`.
    fn usable(&self, margin: Duration, now: Instant) -> bool {
        let margin = margin.min(self.lifetime / 2);
        self.expires.checked_sub(margin).is_some_and(|at| now < at)
    }
}

/// How many retired refresh tokens are remembered (a handful covers any run of failed store
/// writes that matters; older ones are long gone from the store).
const RETIRED: usize = 8;

struct State {
    refresh: Secret,
    access: Option<Cached>,
    /// The failure of the last refresh, with the number of that flight.
    failure: Option<(u64, UpstreamError)>,
    /// Refresh tokens this holder spent, saw refused or replaced, newest last: never adopted
    /// from the store again.
    retired: VecDeque<Secret>,
}

impl State {
    fn retire(&mut self, token: &Secret) {
        if !self.retired.contains(token) {
            if self.retired.len() == RETIRED {
                self.retired.pop_front();
            }
            self.retired.push_back(token.clone());
        }
    }

    /// Whether a token from the store is one to switch to: not ours, not one we left behind.
    fn adoptable(&self, stored: &Secret) -> bool {
        *stored != self.refresh && !self.retired.contains(stored)
    }
}

/// One CLI account's tokens. Share it behind the account (`Arc`); all state is synchronised.
pub struct TokenHolder {
    /// Shared with the task of a refresh in flight, which may outlive the caller that started it.
    shared: Arc<Shared>,
}

struct Shared {
    account_id: String,
    store: Arc<dyn RefreshStore>,
    state: Mutex<State>,
    /// Single flight: held for the whole of a refresh, rotation hand-off included (by the
    /// refresh's task, so a caller giving up does not release it early).
    flight: Arc<tokio::sync::Mutex<()>>,
    /// Refreshes completed or failed so far: a waiter that sees it move shares that outcome.
    flights: AtomicU64,
    refreshes: AtomicU64,
    rotations: AtomicU64,
}

impl std::fmt::Debug for TokenHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenHolder")
            .field("account_id", &self.shared.account_id)
            .field("refreshes", &self.refresh_count())
            .field("rotations", &self.rotation_count())
            .finish_non_exhaustive()
    }
}

/// Locks a std mutex, recovering from poisoning (the state is plain values).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenHolder {
    /// Starts from pasted credentials; a saved access token with time left is used first.
    pub fn new(account_id: &str, credentials: &Credentials, store: Arc<dyn RefreshStore>) -> Self {
        let access = credentials.saved_access().map(|(token, left)| Cached {
            token,
            expires: Instant::now() + left,
            lifetime: left,
        });
        let shared = Shared {
            account_id: account_id.to_string(),
            store,
            state: Mutex::new(State {
                refresh: credentials.refresh_token.clone(),
                access,
                failure: None,
                retired: VecDeque::new(),
            }),
            flight: Arc::new(tokio::sync::Mutex::new(())),
            flights: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
        };
        TokenHolder {
            shared: Arc::new(shared),
        }
    }

    /// The refresh token in use now (to persist at start, or to scrub from messages).
    pub fn refresh_token(&self) -> Secret {
        self.shared.refresh_token()
    }

    /// Refresh calls made (successful or not).
    pub fn refresh_count(&self) -> u64 {
        self.shared.refreshes.load(Ordering::Relaxed)
    }

    /// Rotations handed to the store.
    pub fn rotation_count(&self) -> u64 {
        self.shared.rotations.load(Ordering::Relaxed)
    }

    /// A valid access token: the cached one while it has more than the margin left, else a
    /// fresh one (one refresh for all concurrent callers).
    pub async fn access(&self, http: &Transport, cfg: &CliConfig) -> Result<String, UpstreamError> {
        if let Some(token) = self.shared.usable(cfg, None) {
            return Ok(token);
        }
        self.fly(http, cfg, None).await
    }

    /// The API refused `refused`: a token other than it, refreshed unless another request
    /// already did.
    pub async fn renew_refused(
        &self,
        http: &Transport,
        cfg: &CliConfig,
        refused: &str,
    ) -> Result<String, UpstreamError> {
        self.fly(http, cfg, Some(refused)).await
    }

    /// Replaces the refresh token (a new `cto login` pasted, or a newer token another replica
    /// stored). Waits for a refresh in flight; the cached access token is dropped with it. The
    /// replaced token is never adopted from the store again, but the store is the caller's to
    /// update: a restart reads it.
    pub async fn adopt(&self, refresh_token: Secret) {
        let _flight = self.shared.flight.lock().await;
        let mut guard = lock(&self.shared.state);
        let state = &mut *guard;
        let old = std::mem::replace(&mut state.refresh, refresh_token);
        if old != state.refresh {
            state.retire(&old);
        }
        // A token given back on purpose is usable again.
        let current = &state.refresh;
        state.retired.retain(|t| t != current);
        state.access = None;
        state.failure = None;
    }

    /// One refresh at a time; a waiter takes the token its predecessor got, or its failure.
    async fn fly(
        &self,
        http: &Transport,
        cfg: &CliConfig,
        refused: Option<&str>,
    ) -> Result<String, UpstreamError> {
        let shared = &self.shared;
        let seen = shared.flights.load(Ordering::Acquire);
        let permit = Arc::clone(&shared.flight).lock_owned().await;
        if let Some(token) = shared.usable(cfg, refused) {
            return Ok(token);
        }
        if let Some((flight, err)) = &lock(&shared.state).failure
            && *flight >= seen
            && shared.flights.load(Ordering::Acquire) > seen
        {
            return Err(err.clone());
        }
        let (shared, http, cfg) = (Arc::clone(shared), http.clone(), cfg.clone());
        let task = tokio::spawn(async move {
            let outcome = shared.refresh(&http, &cfg).await;
            let number = shared.flights.load(Ordering::Acquire);
            lock(&shared.state).failure = outcome.as_ref().err().map(|e| (number, e.clone()));
            shared.flights.fetch_add(1, Ordering::AcqRel);
            drop(permit);
            outcome
        });
        task.await.unwrap_or_else(|e| {
            Err(UpstreamError::Protocol {
                call: CALL_TOKEN,
                detail: format!("the refresh task failed: {e}"),
            })
        })
    }
}

impl Shared {
    fn refresh_token(&self) -> Secret {
        lock(&self.state).refresh.clone()
    }

    /// The cached token if it is usable and not the refused one.
    fn usable(&self, cfg: &CliConfig, refused: Option<&str>) -> Option<String> {
        let state = lock(&self.state);
        let cached = state.access.as_ref()?;
        let token = cached.token.expose();
        (cached.usable(cfg.refresh_margin, Instant::now()) && refused != Some(token))
            .then(|| token.to_string())
    }

    /// Switches to `stored` if it is a token to adopt; the one it replaces is retired.
    fn adopt_stored(&self, stored: Option<Secret>) -> Option<Secret> {
        let stored = stored?;
        let mut state = lock(&self.state);
        if !state.adoptable(&stored) {
            return None;
        }
        let ours = std::mem::replace(&mut state.refresh, stored.clone());
        state.retire(&ours);
        Some(stored)
    }

    /// Spends the refresh token (inside the flight, under the store's guard), after adopting a
    /// newer one from the store. On a refusal, a newer token from the store gets one try.
    async fn refresh(&self, http: &Transport, cfg: &CliConfig) -> Result<String, UpstreamError> {
        let _guard = self.store.begin().await;
        if self.adopt_stored(self.store.current().await).is_some() {
            tracing::info!(
                account = %self.account_id,
                "CLI refresh token rotated elsewhere (another replica); using the stored one"
            );
        }
        let spent = self.refresh_token();
        match self.spend(http, cfg, &spent).await {
            Err(dead @ UpstreamError::CliLoginRejected { .. }) => {
                let Some(stored) = self.adopt_stored(self.store.current().await) else {
                    tracing::warn!(account = %self.account_id, error = %dead, "CLI refresh refused");
                    return Err(dead);
                };
                tracing::info!(
                    account = %self.account_id,
                    "CLI refresh refused; trying the newer token from the store"
                );
                self.spend(http, cfg, &stored).await
            }
            other => other,
        }
    }

    /// One refresh call with `spent`, and what follows: the rotation handed to the store, then
    /// the new tokens taken; a refused token is retired.
    async fn spend(
        &self,
        http: &Transport,
        cfg: &CliConfig,
        spent: &Secret,
    ) -> Result<String, UpstreamError> {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let Grant {
            access_token,
            refresh_token,
            lifetime,
        } = match oauth::refresh(http, cfg, spent).await {
            Ok(grant) => grant,
            Err(err) => {
                if matches!(err, UpstreamError::CliLoginRejected { .. }) {
                    lock(&self.state).retire(spent);
                }
                return Err(err);
            }
        };
        if let Some(fresh) = refresh_token.filter(|fresh| fresh != spent) {
            let rotation = Rotation {
                account_id: self.account_id.clone(),
                spent: spent.clone(),
                fresh: fresh.clone(),
            };
            self.store.rotated(&rotation).await;
            self.rotations.fetch_add(1, Ordering::Relaxed);
            let mut state = lock(&self.state);
            state.refresh = fresh;
            state.retire(spent);
            tracing::debug!(account = %self.account_id, "CLI refresh token rotated");
        }
        let token = access_token.expose().to_string();
        lock(&self.state).access = Some(Cached {
            token: access_token,
            expires: Instant::now() + lifetime,
            lifetime,
        });
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_at_most_half_the_lifetime() {
        let now = Instant::now();
        let cached = |lifetime: u64| Cached {
            token: Secret::new("t"),
            expires: now + Duration::from_secs(lifetime),
            lifetime: Duration::from_secs(lifetime),
        };
        let margin = Duration::from_secs(120);
        assert!(cached(900).usable(margin, now));
        assert!(cached(900).usable(margin, now + Duration::from_secs(779)));
        assert!(!cached(900).usable(margin, now + Duration::from_secs(780)));
        // A 4 s token is good for 2 s, not refreshed on every call.
        assert!(cached(4).usable(margin, now + Duration::from_millis(1900)));
        assert!(!cached(4).usable(margin, now + Duration::from_secs(2)));
    }

    #[test]
    fn a_saved_access_token_is_used_and_debug_shows_no_token() {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
            + 600_000;
        let creds = Credentials::parse(&format!(
            r#"{{"accessToken":"at_secret","refreshToken":"rt_secret","expiresAt":{millis}}}"#
        ))
        .expect("credentials");
        let holder = TokenHolder::new("acct", &creds, Arc::new(NoStore));
        let cfg = CliConfig::from_upstream(&crate::upstream::UpstreamConfig::with_urls(
            "http://c", "http://e",
        ));
        assert_eq!(
            holder.shared.usable(&cfg, None).as_deref(),
            Some("at_secret")
        );
        assert_eq!(holder.shared.usable(&cfg, Some("at_secret")), None);
        let text = format!("{holder:?}");
        assert!(!text.contains("secret"), "{text}");
    }
}
