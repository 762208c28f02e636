//! [`TokenHolder`]: one CLI account's tokens. It hands out a valid access token, refreshing
//! it shortly before it expires (or at once after the API refused it), one refresh at a time
//! per account, and keeps the rotating refresh token current.
//!
//! # Why single flight
//! The refresh token rotates on every use and a spent one is refused (protocol notes §10 [G];
//! the simulator does exactly that). Two refreshes racing with the same token would kill the
//! login: the loser spends a dead token. So one refresh runs at a time; requests that waited for
//! it share its outcome, success or failure, instead of each trying again.
//!
//! # Rotations and the store
//! Every rotation is handed to the account's [`RefreshStore`] before anything else happens,
//! inside the single flight, so rotations arrive one at a time and in order. The store gets the
//! token that was spent with the new one: "store `fresh` only if the stored token is still
//! `spent`" is the compare-and-set that keeps a slower replica (or a late write) from putting a
//! spent token back. When the door refuses the token, the store is asked for the one it holds
//! now: if another replica rotated it meanwhile, that one is adopted and tried once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::CliConfig;
use super::credentials::{Credentials, Secret};
use super::oauth::{self, Grant};
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

/// Where an account's refresh token is kept between runs and shared between replicas.
#[async_trait::async_trait]
pub trait RefreshStore: Send + Sync {
    /// Persist `rotation.fresh`, but only if the stored token is still `rotation.spent`.
    /// Called inside the account's single flight: rotations come one at a time, in order, and
    /// the next refresh waits for this call, so keep it short.
    async fn rotated(&self, rotation: &Rotation);

    /// The refresh token stored now, if any. Asked after the door refused ours: another
    /// replica (or the operator) may have stored a newer one.
    async fn current(&self) -> Option<Secret> {
        None
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

struct State {
    refresh: Secret,
    access: Option<Cached>,
    /// The failure of the last refresh, with the number of that flight.
    failure: Option<(u64, UpstreamError)>,
}

/// One CLI account's tokens. Share it behind the account (`Arc`); all state is synchronised.
pub struct TokenHolder {
    account_id: String,
    store: Arc<dyn RefreshStore>,
    state: Mutex<State>,
    /// Single flight: held for the whole of a refresh, rotation hand-off included.
    flight: tokio::sync::Mutex<()>,
    /// Refreshes completed or failed so far: a waiter that sees it move shares that outcome.
    flights: AtomicU64,
    refreshes: AtomicU64,
    rotations: AtomicU64,
}

impl std::fmt::Debug for TokenHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenHolder")
            .field("account_id", &self.account_id)
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
        TokenHolder {
            account_id: account_id.to_string(),
            store,
            state: Mutex::new(State {
                refresh: credentials.refresh_token.clone(),
                access,
                failure: None,
            }),
            flight: tokio::sync::Mutex::new(()),
            flights: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
        }
    }

    /// The refresh token in use now (to persist at start, or to scrub from messages).
    pub fn refresh_token(&self) -> Secret {
        lock(&self.state).refresh.clone()
    }

    /// Refresh calls made (successful or not).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Rotations handed to the store.
    pub fn rotation_count(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// A valid access token: the cached one while it has more than the margin left, else a
    /// fresh one (one refresh for all concurrent callers).
    pub async fn access(&self, http: &Transport, cfg: &CliConfig) -> Result<String, UpstreamError> {
        if let Some(token) = self.usable(cfg, None) {
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
    /// stored). Waits for a refresh in flight; the cached access token is dropped with it.
    pub async fn adopt(&self, refresh_token: Secret) {
        let _flight = self.flight.lock().await;
        let mut state = lock(&self.state);
        state.refresh = refresh_token;
        state.access = None;
        state.failure = None;
    }

    /// The cached token if it is usable and not the refused one.
    fn usable(&self, cfg: &CliConfig, refused: Option<&str>) -> Option<String> {
        let state = lock(&self.state);
        let cached = state.access.as_ref()?;
        let token = cached.token.expose();
        (cached.usable(cfg.refresh_margin, Instant::now()) && refused != Some(token))
            .then(|| token.to_string())
    }

    /// One refresh at a time; a waiter takes the token its predecessor got, or its failure.
    async fn fly(
        &self,
        http: &Transport,
        cfg: &CliConfig,
        refused: Option<&str>,
    ) -> Result<String, UpstreamError> {
        let seen = self.flights.load(Ordering::Acquire);
        let _flight = self.flight.lock().await;
        if let Some(token) = self.usable(cfg, refused) {
            return Ok(token);
        }
        if let Some((flight, err)) = &lock(&self.state).failure
            && *flight >= seen
            && self.flights.load(Ordering::Acquire) > seen
        {
            return Err(err.clone());
        }
        let outcome = self.refresh(http, cfg).await;
        let flight = self.flights.load(Ordering::Acquire);
        lock(&self.state).failure = outcome.as_ref().err().map(|e| (flight, e.clone()));
        self.flights.fetch_add(1, Ordering::AcqRel);
        outcome
    }

    /// Spends the refresh token (inside the flight). On a refusal, a newer token from the
    /// store gets one try.
    async fn refresh(&self, http: &Transport, cfg: &CliConfig) -> Result<String, UpstreamError> {
        let spent = self.refresh_token();
        match self.spend(http, cfg, &spent).await {
            Err(dead @ UpstreamError::CliLoginRejected { .. }) => {
                let stored = self.store.current().await.filter(|s| *s != spent);
                let Some(stored) = stored else {
                    tracing::warn!(account = %self.account_id, error = %dead, "CLI refresh refused");
                    return Err(dead);
                };
                tracing::info!(
                    account = %self.account_id,
                    "CLI refresh refused; trying the newer token from the store"
                );
                lock(&self.state).refresh = stored.clone();
                self.spend(http, cfg, &stored).await
            }
            other => other,
        }
    }

    /// One refresh call with `spent`, and what follows a success: the rotation handed to the
    /// store, then the new tokens taken.
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
        } = oauth::refresh(http, cfg, spent).await?;
        if let Some(fresh) = refresh_token.filter(|fresh| fresh != spent) {
            let rotation = Rotation {
                account_id: self.account_id.clone(),
                spent: spent.clone(),
                fresh: fresh.clone(),
            };
            self.store.rotated(&rotation).await;
            self.rotations.fetch_add(1, Ordering::Relaxed);
            lock(&self.state).refresh = fresh;
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
        assert_eq!(holder.usable(&cfg, None).as_deref(), Some("at_secret"));
        assert_eq!(holder.usable(&cfg, Some("at_secret")), None);
        let text = format!("{holder:?}");
        assert!(!text.contains("secret"), "{text}");
    }
}
