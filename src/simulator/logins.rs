//! The CLI door's OAuth tokens (protocol notes §10): one live refresh token per logged-in
//! account that rotates on every use, and short-lived access tokens.
//!
//! [`Logins`] is plain data with the clock passed in, so the rotation and expiry rules are unit
//! tested without sleeping. It sits beside `state`, which holds it, not inside
//! `cli`, whose handlers need that state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::util::random_alnum;

/// The CLI logins of every account.
#[derive(Default)]
pub(crate) struct Logins {
    /// Live refresh token → user id. A spent token is removed, so it is simply unknown.
    refresh: HashMap<String, String>,
    /// User id → its live refresh token.
    by_user: HashMap<String, String>,
    /// Access token → whom it authorises and until when.
    access: HashMap<String, Access>,
}

struct Access {
    user_id: String,
    expires: Instant,
}

/// What a successful refresh hands out.
#[derive(Debug)]
pub(crate) struct Grant {
    pub user_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Logins {
    /// A new refresh token for `user_id` (what `cto login` stores); the previous one dies.
    pub fn login(&mut self, user_id: &str) -> String {
        let token = format!("cto_rt_{}", random_alnum(40));
        if let Some(old) = self.by_user.insert(user_id.to_owned(), token.clone()) {
            self.refresh.remove(&old);
        }
        self.refresh.insert(token.clone(), user_id.to_owned());
        token
    }

    /// The live refresh token of `user_id`, if it logged in.
    pub fn current(&self, user_id: &str) -> Option<&str> {
        self.by_user.get(user_id).map(String::as_str)
    }

    /// The user of a live refresh token, without spending it.
    pub fn owner(&self, refresh_token: &str) -> Option<&str> {
        self.refresh.get(refresh_token).map(String::as_str)
    }

    /// Spends `refresh_token`: a new refresh token replaces it and an access token valid for
    /// `ttl` from `now` is issued. `None` for a spent or unknown token.
    pub fn refresh(&mut self, refresh_token: &str, ttl: Duration, now: Instant) -> Option<Grant> {
        let user_id = self.refresh.remove(refresh_token)?;
        self.by_user.remove(&user_id);
        let refresh_token = self.login(&user_id);
        self.access.retain(|_, a| a.expires > now);
        let access_token = format!("cto_at_{}", random_alnum(40));
        self.access.insert(
            access_token.clone(),
            Access {
                user_id: user_id.clone(),
                expires: now + ttl,
            },
        );
        Some(Grant {
            user_id,
            access_token,
            refresh_token,
        })
    }

    /// The user an access token authorises at `now`.
    pub fn check(&self, access_token: &str, now: Instant) -> Option<&str> {
        self.access
            .get(access_token)
            .filter(|a| a.expires > now)
            .map(|a| a.user_id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_refresh_rotates_and_the_spent_token_is_refused() {
        let mut l = Logins::default();
        let first = l.login("user_a");
        let now = Instant::now();
        let grant = l.refresh(&first, TTL, now).expect("live token");
        assert_eq!(grant.user_id, "user_a");
        assert_ne!(grant.refresh_token, first);
        assert_eq!(l.current("user_a"), Some(grant.refresh_token.as_str()));
        assert!(l.refresh(&first, TTL, now).is_none());
        assert!(l.refresh(&grant.refresh_token, TTL, now).is_some());
    }

    #[test]
    fn a_new_login_kills_the_previous_refresh_token() {
        let mut l = Logins::default();
        let old = l.login("user_a");
        let new = l.login("user_a");
        assert!(l.owner(&old).is_none());
        assert_eq!(l.owner(&new), Some("user_a"));
    }

    #[test]
    fn access_tokens_expire_and_unknown_ones_are_refused() {
        let mut l = Logins::default();
        let rt = l.login("user_a");
        let now = Instant::now();
        let grant = l.refresh(&rt, TTL, now).expect("live token");
        assert_eq!(l.check(&grant.access_token, now), Some("user_a"));
        assert_eq!(l.check(&grant.access_token, now + TTL), None);
        assert_eq!(l.check("cto_at_forged", now), None);
        // Expired tokens are dropped at the next refresh.
        let _ = l.refresh(&grant.refresh_token, TTL, now + TTL * 2);
        assert_eq!(l.access.len(), 1);
    }
}
