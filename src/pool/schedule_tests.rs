//! Unit tests of the pick (pure) and of the queue (through `Pool::acquire`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::pool::account_state::Health;
use crate::pool::entry::{Entry, Origin};
use crate::pool::{PoolConfig, lock};
use crate::upstream::Account;

fn entry(key: u64, label: &str) -> Entry {
    let account = Arc::new(Account::new(label, &format!("__client={label}")).expect("account"));
    Entry::new(
        key,
        format!("seed{key}"),
        Origin::Config,
        crate::pool::Login::Web(account),
    )
}

fn want(model: &str) -> Want<'_> {
    Want {
        owner: None,
        model,
        doors: Doors::ANY,
        last_resort: false,
    }
}

#[test]
fn least_busy_then_model_then_round_robin() {
    let now = Instant::now();
    let mut es = vec![entry(1, "a"), entry(2, "b"), entry(3, "c")];
    es[0].in_flight = 1;
    es[1].last_pick = 5;
    es[2].last_pick = 3;
    assert!(matches!(
        choose(&mut es, &want("m"), Some(2), now),
        Choice::Picked(2)
    ));
    es[1].last_model = Some("m".into());
    es[2].last_model = Some("other".into());
    assert!(matches!(
        choose(&mut es, &want("m"), Some(2), now),
        Choice::Picked(1)
    ));
    es[0].last_model = Some("other".into());
    es[1].in_flight = 1;
    es[2].in_flight = 2;
    assert!(
        matches!(choose(&mut es, &want("m"), Some(2), now), Choice::Picked(1)),
        "model tie-break among equally busy"
    );
    es[0].in_flight = 2;
    es[1].in_flight = 2;
    assert!(matches!(
        choose(&mut es, &want("m"), Some(2), now),
        Choice::Busy
    ));
}

#[test]
fn skips_unusable_and_explains_why() {
    let now = Instant::now();
    let mut es = vec![entry(1, "a"), entry(2, "b")];
    es[0].health = Health::Dead {
        reason: "401".into(),
    };
    assert!(matches!(
        choose(&mut es, &want("m"), None, now),
        Choice::Picked(1)
    ));
    es[1].health = Health::Dead {
        reason: "401".into(),
    };
    match choose(&mut es, &want("m"), None, now) {
        Choice::Refused(PoolError::AllDead { dead, disabled, .. }) => {
            assert_eq!(dead, ["a", "b"]);
            assert_eq!(disabled, 0);
        }
        other => panic!("{other:?}"),
    }
    es[0].health = Health::Disabled;
    es[1].health = Health::Disabled;
    match choose(&mut es, &want("m"), None, now) {
        Choice::Refused(e @ PoolError::AllDead { .. }) => {
            assert!(e.to_string().contains("disabled"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    es[0].health = Health::Dead {
        reason: "401".into(),
    };
    es[1].health = Health::Dead {
        reason: "401".into(),
    };
    let last = Want {
        last_resort: true,
        ..want("m")
    };
    es[0].last_pick = 9;
    assert!(
        matches!(choose(&mut es, &last, None, now), Choice::Picked(1)),
        "last resort: the least recently tried dead account"
    );
    es[1].in_flight = 1;
    assert!(matches!(
        choose(&mut es, &last, None, now),
        Choice::Picked(0)
    ));
    es[1].in_flight = 0;
    es[1].health = Health::Cooling {
        until: now + Duration::from_secs(7),
        reason: "429".into(),
    };
    match choose(&mut es, &want("m"), None, now) {
        Choice::Refused(PoolError::AllCooling { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(
            choose(&mut es, &want("m"), None, now + Duration::from_secs(8)),
            Choice::Picked(1)
        ),
        "cooling ends by itself"
    );
    assert!(matches!(
        choose(&mut [], &want("m"), None, now),
        Choice::Refused(PoolError::NoAccount)
    ));
}

#[test]
fn owner_is_sticky() {
    let now = Instant::now();
    let mut es = vec![entry(1, "a"), entry(2, "b")];
    es[1].in_flight = 1;
    let w = Want {
        owner: Some(2),
        model: "m",
        doors: Doors::ANY,
        last_resort: false,
    };
    assert!(matches!(
        choose(&mut es, &w, Some(2), now),
        Choice::Picked(1)
    ));
    es[1].in_flight = 2;
    assert!(matches!(choose(&mut es, &w, Some(2), now), Choice::Busy));
    es[1].health = Health::Disabled;
    assert!(matches!(
        choose(&mut es, &w, Some(2), now),
        Choice::Refused(PoolError::OwnerUnavailable)
    ));
}

fn pool(limit: usize, queue: Duration, max_queue: usize) -> Arc<Pool> {
    let p = Pool::new(PoolConfig {
        concurrency: Some(limit),
        queue_timeout: queue,
        max_queue,
        ..PoolConfig::default()
    });
    lock(&p.inner).entries.push(entry(1, "a"));
    p
}

#[tokio::test]
async fn a_freed_slot_wakes_the_queue() {
    let p = pool(1, Duration::from_secs(10), 10);
    let first = p.acquire(want("m")).await.expect("slot");
    let p2 = Arc::clone(&p);
    let waiter = tokio::spawn(async move { p2.acquire(want("m")).await.map(|_| ()) });
    // The waiter is queued (it cannot have a slot while `first` holds the only one).
    for _ in 0..100 {
        if lock(&p.inner).waiting == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lock(&p.inner).waiting, 1);
    drop(first);
    waiter.await.expect("join").expect("got the freed slot");
    assert_eq!(lock(&p.inner).waiting, 0);
    assert_eq!(lock(&p.inner).entries[0].peak_in_flight, 1);
}

#[tokio::test]
async fn queue_timeout_and_queue_full() {
    let p = pool(1, Duration::from_millis(300), 1);
    let _held = p.acquire(want("m")).await.expect("slot");
    let p2 = Arc::clone(&p);
    let waiter = tokio::spawn(async move { p2.acquire(want("m")).await.map(|_| ()) });
    for _ in 0..100 {
        if lock(&p.inner).waiting == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let full = p.acquire(want("m")).await.map(|_| ());
    assert!(matches!(full, Err(PoolError::QueueFull { .. })), "{full:?}");
    let timed_out = waiter.await.expect("join");
    assert!(
        matches!(timed_out, Err(PoolError::QueueTimeout { .. })),
        "{timed_out:?}"
    );
    assert_eq!(lock(&p.inner).waiting, 0, "the waiter left the queue");
}

fn cli_entry(key: u64, label: &str) -> Entry {
    use crate::upstream::cli::{CliAccount, Credentials, NoStore};
    let creds = Credentials::parse(&format!("rt_{label}")).expect("credentials");
    let account = CliAccount::new(label, &creds, Arc::new(NoStore));
    Entry::new(
        key,
        format!("cli-seed{key}"),
        Origin::Config,
        crate::pool::Login::Cli(Arc::new(account)),
    )
}

#[test]
fn doors_keep_requests_to_the_kinds_that_serve_them_and_prefer_one() {
    let now = Instant::now();
    let mut es = vec![entry(1, "web"), cli_entry(2, "cli")];
    let only_cli = Want {
        doors: Doors {
            web: false,
            cli: true,
            prefer: None,
        },
        ..want("m")
    };
    assert!(matches!(
        choose(&mut es, &only_cli, None, now),
        Choice::Picked(1)
    ));
    // Preferred even when busier.
    es[1].in_flight = 1;
    let prefer_cli = Want {
        doors: Doors {
            prefer: Some(Kind::Cli),
            ..Doors::ANY
        },
        ..want("m")
    };
    assert!(matches!(
        choose(&mut es, &prefer_cli, Some(4), now),
        Choice::Picked(1)
    ));
    assert!(matches!(
        choose(&mut es, &want("m"), Some(4), now),
        Choice::Picked(0)
    ));
    // No account of the kind: a refusal that names the missing kind.
    let mut web_only = vec![entry(1, "web")];
    match choose(&mut web_only, &only_cli, None, now) {
        Choice::Refused(e @ PoolError::NoDoor { .. }) => {
            assert!(e.to_string().contains("CTO_REFRESH_TOKEN"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn limits_are_per_kind_and_a_cli_429_teaches_a_lower_one() {
    let now = Instant::now();
    let limits = Limits {
        web: Some(1),
        cli: Some(5),
    };
    let mut es = vec![entry(1, "web"), cli_entry(2, "cli")];
    es[0].in_flight = 1;
    es[1].in_flight = 4;
    assert!(matches!(
        choose(&mut es, &want("m"), limits, now),
        Choice::Picked(1)
    ));
    let p = Pool::new(PoolConfig::default());
    lock(&p.inner).entries.push(cli_entry(7, "cli"));
    lock(&p.inner).entries[0].in_flight = 3;
    let mut lease = Lease {
        pool: Arc::clone(&p),
        key: 7,
        login: lock(&p.inner).entries[0].login.clone(),
        settled: false,
    };
    let err = crate::upstream::UpstreamError::RateLimited {
        what: "chat".into(),
        retry_after: None,
    };
    p.record_failure(&mut lease, &err);
    let g = lock(&p.inner);
    assert_eq!(g.entries[0].learned_limit, Some(2));
    assert_eq!(g.entries[0].limit(Some(5)), 2);
}
