//! A per-account circuit breaker: after `failures` consecutive failures the account gets no
//! traffic for `open_for`; then one trial request is let through (half-open). Its success
//! closes the breaker, its failure opens it again. This keeps a failing account from eating
//! the retries of every request while it is down.
//!
//! Time is passed in (`now`) so the state machine is tested without sleeping.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    pub failures: u32,
    pub open_for: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// `trial`: whether the one request allowed through is still out.
    HalfOpen {
        trial: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Breaker {
    failures: u32,
    state: State,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            failures: 0,
            state: State::Closed,
        }
    }
}

impl Breaker {
    /// Whether a request may go to this account now.
    pub fn allows(&self, now: Instant) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } => now >= until,
            State::HalfOpen { trial } => !trial,
        }
    }

    /// When an open breaker lets a trial through (for Retry-After).
    pub fn open_until(&self) -> Option<Instant> {
        match self.state {
            State::Open { until } => Some(until),
            _ => None,
        }
    }

    /// A request was sent to the account (call only when [`Breaker::allows`]).
    pub fn on_pick(&mut self, now: Instant) {
        match self.state {
            State::Open { until } if now >= until => self.state = State::HalfOpen { trial: true },
            State::HalfOpen { .. } => self.state = State::HalfOpen { trial: true },
            _ => {}
        }
    }

    pub fn on_success(&mut self) {
        *self = Breaker::default();
    }

    pub fn on_failure(&mut self, now: Instant, cfg: &BreakerConfig) {
        self.failures = self.failures.saturating_add(1);
        let trip = matches!(self.state, State::HalfOpen { .. }) || self.failures >= cfg.failures;
        if trip {
            self.state = State::Open {
                until: now + cfg.open_for,
            };
        }
    }

    /// The request ended without saying anything about the account (cancelled, or refused for
    /// its own content): a half-open trial slot is given back.
    pub fn on_abandon(&mut self) {
        if let State::HalfOpen { .. } = self.state {
            self.state = State::HalfOpen { trial: false };
        }
    }

    pub fn name(&self, now: Instant) -> &'static str {
        match self.state {
            State::Closed => "closed",
            State::Open { until } if now < until => "open",
            _ => "half-open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: BreakerConfig = BreakerConfig {
        failures: 3,
        open_for: Duration::from_secs(30),
    };

    #[test]
    fn opens_after_consecutive_failures_and_half_opens() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        b.on_failure(t0, &CFG);
        b.on_failure(t0, &CFG);
        assert!(b.allows(t0), "two failures keep it closed");
        b.on_failure(t0, &CFG);
        assert!(!b.allows(t0), "third failure opens it");
        assert_eq!(b.name(t0), "open");
        let later = t0 + Duration::from_secs(31);
        assert!(b.allows(later), "after open_for one trial may go");
        b.on_pick(later);
        assert!(!b.allows(later), "only one trial at a time");
        b.on_failure(later, &CFG);
        assert!(
            !b.allows(later + Duration::from_secs(1)),
            "a failed trial reopens"
        );
        let again = later + Duration::from_secs(31);
        b.on_pick(again);
        b.on_success();
        assert!(b.allows(again));
        assert_eq!(b.name(again), "closed");
    }

    #[test]
    fn success_resets_the_count_and_abandon_frees_the_trial() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        b.on_failure(t0, &CFG);
        b.on_failure(t0, &CFG);
        b.on_success();
        b.on_failure(t0, &CFG);
        assert!(b.allows(t0), "count restarted after a success");
        for _ in 0..3 {
            b.on_failure(t0, &CFG);
        }
        let later = t0 + Duration::from_secs(30);
        b.on_pick(later);
        assert!(!b.allows(later));
        b.on_abandon();
        assert!(
            b.allows(later),
            "an abandoned trial lets the next one through"
        );
    }
}
