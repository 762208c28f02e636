//! The background task that keeps the pool's knowledge fresh: it re-probes dead accounts every
//! `DEAD_RECHECK_INTERVAL` (their cookie may work again) and reads each used account's quota
//! every `QUOTA_CHECK_INTERVAL` (an exhausted account is skipped until its credits are back).
//!
//! Accounts never used are not probed: a proxy that only starts makes no upstream call.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::account_state::Health;
use super::{Pool, lock};
use crate::upstream::{Account, EngineClient};

/// How often the task looks for due work (cheap: one lock, no I/O when nothing is due).
const TICK: Duration = Duration::from_secs(1);

/// Starts the task; it ends when the pool is dropped.
pub fn spawn(pool: &Arc<Pool>, engine: Arc<EngineClient>) -> tokio::task::JoinHandle<()> {
    let weak: Weak<Pool> = Arc::downgrade(pool);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(pool) = weak.upgrade() else { break };
            // Cooling ends silently; keep `el2a_accounts{state}` current anyway.
            pool.publish();
            for (key, account, dead) in pool.due(Instant::now()) {
                pool.probe(&engine, key, &account, dead).await;
            }
        }
    })
}

impl Pool {
    /// Accounts due for a probe; marks them not due so a slow probe is not started twice.
    fn due(&self, now: Instant) -> Vec<(u64, Arc<Account>, bool)> {
        let mut g = lock(&self.inner);
        let mut out = Vec::new();
        for e in g.entries.iter_mut() {
            let dead = matches!(e.health, Health::Dead { .. });
            let due = if dead {
                e.recheck_due.is_some_and(|t| now >= t)
            } else if e.health == Health::Disabled {
                false
            } else {
                e.quota_due.is_some_and(|t| now >= t)
            };
            // The probe reads the web agent's `/billing`; CLI logins have no such call.
            let Some(web) = e.login.web() else { continue };
            if due {
                if dead {
                    e.recheck_due = Some(now + self.cfg.dead_recheck);
                } else {
                    e.quota_due = Some(now + self.cfg.quota_check);
                }
                out.push((e.key, Arc::clone(web), dead));
            }
        }
        out
    }
}
