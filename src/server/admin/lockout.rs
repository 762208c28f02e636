//! Back-off for wrong admin keys, per client address.
//!
//! Every way of presenting ADMIN_KEY (`Authorization: Bearer` or `x-api-key` on `/admin/api`,
//! the login form of the page) goes through [`Lockout::attempt`]. After [`FREE_FAILURES`] wrong
//! keys from one address, that address is locked out for [`FIRST_LOCK`], doubling with each
//! further wrong key up to [`MAX_LOCK`]. While it is locked out its keys are not even checked
//! (the answer is a 429 with `Retry-After`), so a guess made then learns nothing. The check and
//! the count happen under one lock: concurrent guesses are counted as they arrive, a burst never
//! gets more than the free tries (the 300 ms pause of a wrong login only slowed one guess after
//! another). The right key clears its address; an address with no wrong key for
//! [`FORGET_AFTER`] is forgotten.
//!
//! The address is the connection's peer ([`ClientAddr`]), IPv6 by /64 (one host usually holds a
//! whole /64). Behind a reverse proxy every client shares the proxy's address, so the back-off
//! applies to all of them together; a live page session is never locked out (its token is a MAC
//! under a secret the store keeps: nothing to guess, so session cookies are not counted either).
//! A server that does not hand the peer address to the router puts every client in one bucket,
//! and says so once in the log.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Extensions;
use axum::http::request::Parts;

/// Wrong keys an address may send before the first lock-out.
pub const FREE_FAILURES: u32 = 5;
/// The first lock-out; each further wrong key doubles it.
pub const FIRST_LOCK: Duration = Duration::from_secs(1);
/// The longest lock-out: about one guess in five minutes per address in the long run.
pub const MAX_LOCK: Duration = Duration::from_secs(300);
/// An address without a wrong key for this long starts over.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Most addresses remembered; beyond it the one idle longest is forgotten first.
const MAX_ADDRESSES: usize = 10_000;

/// What became of one presented admin key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Accepted,
    /// Wrong, and counted.
    Refused,
    /// Not checked: the address may try again after this long (whole seconds).
    LockedOut(Duration),
}

/// The wrong-key history of one address.
#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    locked_until: Option<Instant>,
    last_failure: Instant,
}

/// Failure counts by client address (one per application, in the `AppState`).
#[derive(Default)]
pub struct Lockout {
    table: Mutex<HashMap<IpAddr, Record>>,
    /// Whether the "no peer address" warning was logged.
    warned: AtomicBool,
}

impl Lockout {
    /// Runs `key_ok` for a key presented from `addr` unless the address is locked out, and
    /// counts the outcome. `key_ok` runs under the table's lock (a constant-time digest
    /// comparison), which is what makes concurrent guesses count one by one.
    pub fn attempt(
        &self,
        addr: ClientAddr,
        now: Instant,
        key_ok: impl FnOnce() -> bool,
    ) -> Attempt {
        if addr.0 == UNKNOWN && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the server gives no client addresses: the admin key back-off is shared by every client"
            );
        }
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = table.get(&addr.0).and_then(|r| r.locked_until)
            && until > now
        {
            // Whole seconds, rounded up: a client that waits that long finds the lock gone.
            let left = until - now;
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Attempt::LockedOut(Duration::from_secs(secs));
        }
        if key_ok() {
            table.remove(&addr.0);
            return Attempt::Accepted;
        }
        let fresh = Record {
            failures: 0,
            locked_until: None,
            last_failure: now,
        };
        let mut record = match table.get(&addr.0) {
            Some(r) if now.duration_since(r.last_failure) < FORGET_AFTER => *r,
            _ => fresh,
        };
        record.failures += 1;
        record.last_failure = now;
        record.locked_until = lock_for(record.failures).map(|d| now + d);
        if !table.contains_key(&addr.0) && table.len() >= MAX_ADDRESSES {
            make_room(&mut table, now);
        }
        table.insert(addr.0, record);
        Attempt::Refused
    }
}

/// How long an address is locked out after its `failures`-th wrong key.
fn lock_for(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(FREE_FAILURES)?;
    let factor = 1u32.checked_shl(over).unwrap_or(u32::MAX);
    Some(FIRST_LOCK.saturating_mul(factor).min(MAX_LOCK))
}

/// Forgets the addresses idle past [`FORGET_AFTER`], or else the one idle longest.
fn make_room(table: &mut HashMap<IpAddr, Record>, now: Instant) {
    table.retain(|_, r| now.duration_since(r.last_failure) < FORGET_AFTER);
    if table.len() >= MAX_ADDRESSES
        && let Some(oldest) = table
            .iter()
            .min_by_key(|(_, r)| r.last_failure)
            .map(|(a, _)| *a)
    {
        table.remove(&oldest);
    }
}

/// The bucket of requests whose peer address is unknown.
const UNKNOWN: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// The client address an admin key is counted under: the connection's peer (IPv4, or the /64
/// of an IPv6 address). Never fails: without a peer address it is one shared bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// From a request's extensions (`ConnectInfo<SocketAddr>`, which `axum::serve` adds when
    /// the router is served `into_make_service_with_connect_info`).
    pub fn of(extensions: &Extensions) -> ClientAddr {
        let ip = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(UNKNOWN, |c| c.0.ip());
        ClientAddr(bucket(ip))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(&parts.extensions))
    }
}

fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> ClientAddr {
        ClientAddr(bucket(s.parse().expect("ip")))
    }

    #[test]
    fn free_tries_then_a_doubling_lock_out_capped() {
        let l = Lockout::default();
        let (a, t0) = (addr("192.0.2.1"), Instant::now());
        for _ in 0..FREE_FAILURES - 1 {
            assert_eq!(l.attempt(a, t0, || false), Attempt::Refused);
        }
        // The fifth wrong key is answered, then the address waits.
        assert_eq!(l.attempt(a, t0, || false), Attempt::Refused);
        assert_eq!(l.attempt(a, t0, || true), Attempt::LockedOut(FIRST_LOCK));
        let t1 = t0 + FIRST_LOCK;
        assert_eq!(l.attempt(a, t1, || false), Attempt::Refused);
        assert_eq!(
            l.attempt(a, t1, || true),
            Attempt::LockedOut(2 * FIRST_LOCK)
        );
        assert_eq!(lock_for(FREE_FAILURES + 20), Some(MAX_LOCK));
        assert_eq!(lock_for(u32::MAX), Some(MAX_LOCK));
        assert_eq!(lock_for(FREE_FAILURES - 1), None);
    }

    #[test]
    fn the_right_key_clears_and_addresses_are_apart() {
        let l = Lockout::default();
        let (a, b, t) = (addr("192.0.2.1"), addr("192.0.2.2"), Instant::now());
        for _ in 0..FREE_FAILURES {
            l.attempt(a, t, || false);
        }
        assert_eq!(l.attempt(b, t, || true), Attempt::Accepted);
        let later = t + FIRST_LOCK;
        assert_eq!(l.attempt(a, later, || true), Attempt::Accepted);
        assert_eq!(
            l.attempt(a, later, || false),
            Attempt::Refused,
            "counted anew"
        );
    }

    #[test]
    fn an_idle_address_is_forgotten() {
        let l = Lockout::default();
        let (a, t) = (addr("192.0.2.1"), Instant::now());
        for _ in 0..FREE_FAILURES {
            l.attempt(a, t, || false);
        }
        let much_later = t + FORGET_AFTER;
        assert_eq!(l.attempt(a, much_later, || false), Attempt::Refused);
        assert_eq!(
            l.attempt(a, much_later, || true),
            Attempt::Accepted,
            "one failure only"
        );
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(addr("2001:db8:1:2:aaaa::1"), addr("2001:db8:1:2:bbbb::2"));
        assert_ne!(addr("2001:db8:1:2::1"), addr("2001:db8:1:3::1"));
        assert_eq!(addr("::ffff:192.0.2.1"), addr("192.0.2.1"));
        assert_eq!(ClientAddr::of(&Extensions::new()).0, UNKNOWN);
    }

    #[test]
    fn the_table_is_bounded() {
        let l = Lockout::default();
        let t = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.attempt(
                ClientAddr(ip),
                t + Duration::from_millis(u64::from(i)),
                || false,
            );
        }
        let table = l.table.lock().expect("lock");
        assert_eq!(table.len(), MAX_ADDRESSES);
        assert!(!table.contains_key(&IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000))));
    }
}
