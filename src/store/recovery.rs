//! [`Recovery`]: when to reopen the embedded store's file after an I/O error.
//!
//! After one failed write (a full disk, an I/O error) redb answers every later call with
//! "Previous I/O error occurred. Please close and re-open the database", even once the disk has
//! room again. So the store closes the file on such an error and opens it again later. Pure:
//! the caller passes the clock in, so the schedule is tested without waiting.
//!
//! The first reopen is tried on the next call (most I/O errors are gone by then); each failure
//! after that doubles the pause up to [`MAX_PAUSE`], so a disk that stays full costs one open
//! attempt per pause rather than one per request. Only a successful write clears the count:
//! a reopen that succeeds but whose first write fails again keeps backing off.

use std::time::{Duration, Instant};

/// Pause after the second failure in a row; it doubles with each further one.
pub const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause between two reopen attempts.
pub const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The file's write health and the reopen schedule.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Set while the database is closed after an I/O error: why, and when to try again.
    closed: Option<Closed>,
    /// Failures (I/O errors and failed reopens) since the last successful write.
    strikes: u32,
    /// When the first of those failures happened (to report how long recovery took).
    failing_since: Option<Instant>,
}

#[derive(Debug)]
struct Closed {
    reason: String,
    next_try: Instant,
}

impl Recovery {
    /// A call failed with an I/O error (or a reopen failed): the database is (or stays)
    /// closed. Returns true for the first failure of a run, which deserves a warning.
    pub fn failed(&mut self, reason: String, now: Instant) -> bool {
        let first = self.failing_since.is_none();
        self.failing_since.get_or_insert(now);
        let next_try = now + pause(self.strikes);
        self.strikes = self.strikes.saturating_add(1);
        self.closed = Some(Closed { reason, next_try });
        first
    }

    /// Whether the database is closed and a reopen may be tried now.
    pub fn due(&self, now: Instant) -> bool {
        self.closed.as_ref().is_some_and(|c| now >= c.next_try)
    }

    /// Why the database is closed, if it is.
    pub fn closed_because(&self) -> Option<&str> {
        self.closed.as_ref().map(|c| c.reason.as_str())
    }

    /// How long until the next reopen attempt (zero when due), if closed.
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        self.closed
            .as_ref()
            .map(|c| c.next_try.saturating_duration_since(now))
    }

    /// A reopen succeeded (and wrote its probe): the file works again. Returns how long it did
    /// not, when it had failed.
    pub fn recovered(&mut self, now: Instant) -> Option<Duration> {
        self.closed = None;
        self.strikes = 0;
        self.failing_since
            .take()
            .map(|since| now.saturating_duration_since(since))
    }
}

/// The pause before the next attempt after `strikes` failures in a row.
fn pause(strikes: u32) -> Duration {
    match strikes {
        0 => Duration::ZERO,
        n => FIRST_PAUSE
            .saturating_mul(1 << (n - 1).min(16))
            .min(MAX_PAUSE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reopen_is_due_at_once_then_pauses_double_up_to_the_cap() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        assert!(!r.due(t0));
        assert!(
            r.failed("disk full".into(), t0),
            "the first failure is reported"
        );
        assert!(r.due(t0));
        assert_eq!(r.closed_because(), Some("disk full"));
        assert!(!r.failed("still full".into(), t0), "later ones are not");
        assert!(!r.due(t0 + Duration::from_millis(249)));
        assert!(r.due(t0 + FIRST_PAUSE));
        r.failed("still full".into(), t0);
        assert_eq!(r.retry_in(t0), Some(FIRST_PAUSE * 2));
        for _ in 0..20 {
            r.failed("still full".into(), t0);
        }
        assert_eq!(r.retry_in(t0), Some(MAX_PAUSE));
    }

    #[test]
    fn recovery_reports_the_outage_and_starts_the_schedule_again() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        assert_eq!(r.recovered(t0), None, "nothing had failed");
        r.failed("disk full".into(), t0);
        r.failed("disk full".into(), t0);
        let later = t0 + Duration::from_secs(3);
        assert_eq!(r.recovered(later), Some(Duration::from_secs(3)));
        assert!(r.closed_because().is_none() && !r.due(later));
        assert!(
            r.failed("again".into(), later),
            "a new outage is reported again"
        );
        assert!(r.due(later), "and its first reopen is immediate");
    }
}
