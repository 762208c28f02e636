//! Which account runs a turn: the least busy usable account with a free slot (preferring one
//! already on the requested model), or the owner of a continued conversation; a bounded wait
//! when every slot is busy; and the [`Lease`] that holds the slot until the turn is over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::account_state::{HealthState, secs_until};
use super::entry::Entry;
use super::login::{Kind, Login};
use super::{Pool, PoolError, lock};

/// Which doors may serve a request: the kinds of account that serve its model, and the one to
/// prefer when both do (the CLI door for requests with tools: native tool calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doors {
    pub web: bool,
    pub cli: bool,
    pub prefer: Option<Kind>,
}

impl Doors {
    /// Either door, no preference.
    pub const ANY: Doors = Doors {
        web: true,
        cli: true,
        prefer: None,
    };

    pub fn allows(&self, kind: Kind) -> bool {
        match kind {
            Kind::Web => self.web,
            Kind::Cli => self.cli,
        }
    }
}

/// Turns at once per account, by kind (`ACCOUNT_CONCURRENCY`, `CLI_CONCURRENCY`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub web: Option<usize>,
    pub cli: Option<usize>,
}

impl Limits {
    pub fn of(&self, kind: Kind) -> Option<usize> {
        match kind {
            Kind::Web => self.web,
            Kind::Cli => self.cli,
        }
    }
}

impl From<Option<usize>> for Limits {
    fn from(both: Option<usize>) -> Limits {
        Limits {
            web: both,
            cli: both,
        }
    }
}

/// What a request needs from the pool.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// The account that owns the conversation's upstream history (its pool key).
    pub owner: Option<u64>,
    pub model: &'a str,
    /// The kinds of account that may take it.
    pub doors: Doors,
    /// When every account is dead, try one of them anyway (an idle one, the least recently
    /// tried): with no alternative, a request re-testing the cookie is how a restored cookie
    /// is noticed without waiting for the periodic re-probe. The relay allows it once per
    /// request, so a dead pool costs one Clerk call per request, not one per account.
    pub last_resort: bool,
}

/// The outcome of one look at the pool.
#[derive(Debug)]
pub(super) enum Choice {
    Picked(usize),
    /// Some account could serve but all its slots are taken: wait.
    Busy,
    Refused(PoolError),
}

/// Picks an entry (pure: no locking, no time source of its own).
pub(super) fn choose(
    entries: &mut [Entry],
    want: &Want<'_>,
    limits: impl Into<Limits>,
    now: Instant,
) -> Choice {
    let limits: Limits = limits.into();
    let limit = |e: &Entry| e.limit(limits.of(e.kind()));
    for e in entries.iter_mut() {
        e.health.settle(now);
    }
    let serves =
        |e: &Entry| want.doors.allows(e.kind()) && e.health.is_usable(now) && e.breaker.allows(now);
    if let Some(owner) = want.owner {
        return match entries.iter().position(|e| e.key == owner) {
            Some(i) if serves(&entries[i]) => {
                if entries[i].in_flight < limit(&entries[i]) {
                    Choice::Picked(i)
                } else {
                    Choice::Busy
                }
            }
            _ => Choice::Refused(PoolError::OwnerUnavailable),
        };
    }
    let best = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| serves(e) && e.in_flight < limit(e))
        .min_by_key(|(_, e)| {
            (
                // The preferred door first, when the request has one.
                want.doors.prefer.is_some_and(|k| k != e.kind()),
                e.in_flight * 1000 / limit(e),
                // On another model: would need a switch (an unused account is neutral).
                e.last_model.as_deref().is_some_and(|m| m != want.model),
                e.last_pick,
            )
        });
    match best {
        Some((i, _)) => Choice::Picked(i),
        None if entries.iter().any(serves) => Choice::Busy,
        None if !entries.iter().any(|e| want.doors.allows(e.kind())) && !entries.is_empty() => {
            Choice::Refused(PoolError::NoDoor {
                model: want.model.to_string(),
                kind: if want.doors.web { Kind::Web } else { Kind::Cli },
            })
        }
        None => match nothing_serves(entries, now) {
            err @ PoolError::AllDead { .. } if want.last_resort => entries
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    want.doors.allows(e.kind())
                        && e.health.state(now) == HealthState::Dead
                        && e.in_flight == 0
                })
                .min_by_key(|(_, e)| e.last_pick)
                .map_or(Choice::Refused(err), |(i, _)| Choice::Picked(i)),
            err => Choice::Refused(err),
        },
    }
}

/// Why no account can serve: all dead (name them), or resting (say until when).
fn nothing_serves(entries: &[Entry], now: Instant) -> PoolError {
    if entries.is_empty() {
        return PoolError::NoAccount;
    }
    let soonest = entries
        .iter()
        .filter_map(|e| {
            // A healthy account kept out by its breaker: open until a time, or half-open
            // with its one trial running (it answers soon).
            e.health.cooling_until().or_else(|| {
                e.health.is_usable(now).then(|| {
                    e.breaker
                        .open_until()
                        .unwrap_or(now + Duration::from_secs(1))
                })
            })
        })
        .min();
    if let Some(until) = soonest {
        return PoolError::AllCooling {
            retry_after: Duration::from_secs(secs_until(now, until)),
        };
    }
    let dead_of = |kind: Kind| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.kind() == kind && e.health.state(now) == HealthState::Dead)
            .map(|e| e.login.label().to_string())
            .collect()
    };
    let (dead, dead_cli) = (dead_of(Kind::Web), dead_of(Kind::Cli));
    PoolError::AllDead {
        disabled: entries.len() - dead.len() - dead_cli.len(),
        dead,
        dead_cli,
    }
}

/// A slot on one account, held for the whole turn: dropping it (turn finished, failed or
/// abandoned by the client) frees the slot and wakes the queue.
pub struct Lease {
    pub(super) pool: Arc<Pool>,
    pub(super) key: u64,
    pub login: Login,
    /// Whether the attempt's outcome was recorded (else a half-open trial is given back).
    pub(super) settled: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        {
            let mut g = lock(&self.pool.inner);
            if let Some(e) = g.entries.iter_mut().find(|e| e.key == self.key) {
                e.in_flight = e.in_flight.saturating_sub(1);
                if !self.settled {
                    e.breaker.on_abandon();
                }
            }
        }
        self.pool.notify.notify_waiters();
    }
}

/// Counts a request in the wait queue while it waits (also when the client goes away).
struct Waiting<'a>(&'a Pool);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut g = lock(&self.0.inner);
        g.waiting = g.waiting.saturating_sub(1);
        metrics::gauge!(crate::metrics::QUEUE_DEPTH).set(g.waiting as f64);
    }
}

/// How often a waiting request looks again even without a wake-up (cooling ends silently).
const RECHECK: Duration = Duration::from_millis(250);

impl Pool {
    /// A slot for `want`, waiting up to `QUEUE_TIMEOUT_SECS` when every slot is busy.
    pub async fn acquire(self: &Arc<Self>, want: Want<'_>) -> Result<Lease, PoolError> {
        let deadline = Instant::now() + self.cfg.queue_timeout;
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            {
                let mut g = lock(&self.inner);
                g.picks += 1;
                let pick = g.picks;
                match choose(&mut g.entries, &want, self.cfg.limits(), now) {
                    Choice::Picked(i) => {
                        let e = &mut g.entries[i];
                        e.in_flight += 1;
                        e.peak_in_flight = e.peak_in_flight.max(e.in_flight);
                        e.last_pick = pick;
                        e.breaker.on_pick(now);
                        let lease = Lease {
                            pool: Arc::clone(self),
                            key: e.key,
                            login: e.login.clone(),
                            settled: false,
                        };
                        drop(g);
                        drop(waiting);
                        return Ok(lease);
                    }
                    Choice::Refused(err) => return Err(err),
                    Choice::Busy if waiting.is_none() => {
                        if g.waiting >= self.cfg.max_queue {
                            return Err(PoolError::QueueFull {
                                retry_after: retry_hint(self.cfg.queue_timeout),
                            });
                        }
                        g.waiting += 1;
                        metrics::gauge!(crate::metrics::QUEUE_DEPTH).set(g.waiting as f64);
                        waiting = Some(Waiting(self));
                    }
                    Choice::Busy => {}
                }
            }
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(PoolError::QueueTimeout {
                    waited: self.cfg.queue_timeout,
                    retry_after: retry_hint(self.cfg.queue_timeout),
                });
            }
            let _ = tokio::time::timeout(left.min(RECHECK), notified).await;
        }
    }
}

fn retry_hint(queue_timeout: Duration) -> Duration {
    queue_timeout.clamp(Duration::from_secs(1), Duration::from_secs(30))
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
