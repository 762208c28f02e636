//! The health of one account, and the quota `/billing` reports for it.
//!
//! - active: gets traffic;
//! - cooling: rate limited or out of credits, until a time; comes back by itself;
//! - dead: the cookie was rejected; re-probed rarely (and on `/check`) in case it works again;
//! - disabled: taken out by the admin; only the admin brings it back.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// An account's health at one instant without its details (reason, until when): what the code
/// compares, and, through [`HealthState::as_str`], what the admin API, `/readyz` and the
/// `el2a_accounts{state}` gauge write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Active,
    Cooling,
    Dead,
    Disabled,
}

impl HealthState {
    /// Every state, in declaration order (so `state as usize` indexes it).
    pub const ALL: [HealthState; 4] = [
        HealthState::Active,
        HealthState::Cooling,
        HealthState::Dead,
        HealthState::Disabled,
    ];

    /// The wire and metrics name (the same as the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Active => "active",
            HealthState::Cooling => "cooling",
            HealthState::Dead => "dead",
            HealthState::Disabled => "disabled",
        }
    }
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Active,
    Cooling { until: Instant, reason: String },
    Dead { reason: String },
    Disabled,
}

impl Health {
    /// A cooling account whose time is up is active again.
    pub fn settle(&mut self, now: Instant) {
        if let Health::Cooling { until, .. } = self
            && now >= *until
        {
            *self = Health::Active;
        }
    }

    pub fn state(&self, now: Instant) -> HealthState {
        match self {
            Health::Active => HealthState::Active,
            Health::Cooling { until, .. } if now >= *until => HealthState::Active,
            Health::Cooling { .. } => HealthState::Cooling,
            Health::Dead { .. } => HealthState::Dead,
            Health::Disabled => HealthState::Disabled,
        }
    }

    pub fn is_usable(&self, now: Instant) -> bool {
        self.state(now) == HealthState::Active
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Health::Cooling { reason, .. } | Health::Dead { reason } => Some(reason),
            Health::Disabled => Some("disabled by the admin"),
            Health::Active => None,
        }
    }

    pub fn cooling_until(&self) -> Option<Instant> {
        match self {
            Health::Cooling { until, .. } => Some(*until),
            _ => None,
        }
    }
}

/// The account's credits as `/billing` last reported them (both known shapes).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Quota {
    pub used: Option<f64>,
    pub limit: Option<f64>,
    pub weekly_limit: Option<f64>,
    pub exhausted: bool,
    pub concurrency_limit: Option<usize>,
    pub tier: Option<String>,
}

impl Quota {
    /// Reads the 2026 shape (`dailyUsage`, `dailyLimit`, `weeklyLimit`, `hasReachedLimit`) or
    /// the 2025 shape (`taskCreditsUsage`, `taskCreditsLimit`).
    pub fn from_billing(v: &Value) -> Quota {
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let used = num("dailyUsage").or_else(|| num("taskCreditsUsage"));
        let limit = num("dailyLimit").or_else(|| num("taskCreditsLimit"));
        let flagged = ["hasReachedLimit", "limitReached"].iter().any(|k| {
            v.get(*k)
                .is_some_and(|x| x.as_bool() == Some(true) || x.is_object())
        });
        let over = matches!((used, limit), (Some(u), Some(l)) if l > 0.0 && u >= l);
        Quota {
            used,
            limit,
            weekly_limit: num("weeklyLimit"),
            exhausted: flagged || over,
            concurrency_limit: v
                .get("taskConcurrencyLimit")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .map(|n| n as usize),
            tier: v
                .get("tier")
                .or_else(|| v.get("currentBillingTier"))
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

/// Seconds from `now` until `t` (at least 1), for Retry-After and the admin list.
pub fn secs_until(now: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(now)
        .max(Duration::from_secs(1))
        .as_secs_f64()
        .ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cooling_expires_by_itself() {
        let now = Instant::now();
        let mut h = Health::Cooling {
            until: now + Duration::from_secs(5),
            reason: "429".into(),
        };
        assert!(!h.is_usable(now));
        assert_eq!(h.state(now), HealthState::Cooling);
        let later = now + Duration::from_secs(5);
        assert!(h.is_usable(later));
        h.settle(later);
        assert_eq!(h, Health::Active);
        assert!(!Health::Dead { reason: "x".into() }.is_usable(now));
        assert!(!Health::Disabled.is_usable(now));
    }

    #[test]
    fn billing_shapes() {
        let q = Quota::from_billing(&json!({"tier": "free", "dailyUsage": 12, "dailyLimit": 300,
            "weeklyLimit": 900, "hasReachedLimit": false, "taskConcurrencyLimit": 2}));
        assert_eq!(q.used, Some(12.0));
        assert_eq!(q.limit, Some(300.0));
        assert_eq!(q.concurrency_limit, Some(2));
        assert!(!q.exhausted);
        let q = Quota::from_billing(&json!({"hasReachedLimit": true}));
        assert!(q.exhausted);
        let q = Quota::from_billing(&json!({"taskCreditsUsage": 50, "taskCreditsLimit": 50,
            "currentBillingTier": "pro"}));
        assert!(q.exhausted);
        assert_eq!(q.tier.as_deref(), Some("pro"));
        let q = Quota::from_billing(&json!({"taskCreditsUsage": 5, "taskCreditsLimit": 50}));
        assert!(!q.exhausted);
    }
}
