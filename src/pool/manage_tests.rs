//! Unit tests of `manage`: an exhausted `/billing` quota rests the account until it is back.

use super::*;
use crate::pool::HealthState;
use std::time::Duration;

#[test]
fn exhausted_quota_rests_the_account_until_it_is_back() {
    let account = Arc::new(Account::new("q", "__client=q").expect("account"));
    let mut e = Entry::new(
        1,
        "seed".into(),
        Origin::Config,
        crate::pool::Login::Web(account),
    );
    let now = Instant::now();
    let week = Duration::from_secs(300);
    let full = Quota {
        exhausted: true,
        concurrency_limit: Some(3),
        ..Quota::default()
    };
    apply_quota(&mut e, full, now, week);
    assert_eq!(e.health.state(now), HealthState::Cooling);
    assert_eq!(e.limit(None), 3, "the limit comes from /billing");
    assert_eq!(e.limit(Some(1)), 1, "unless ACCOUNT_CONCURRENCY is set");
    apply_quota(&mut e, Quota::default(), now, week);
    assert_eq!(e.health, Health::Active, "credits back: active again");
    e.health = Health::Disabled;
    let full = Quota {
        exhausted: true,
        ..Quota::default()
    };
    apply_quota(&mut e, full, now, week);
    assert_eq!(e.health, Health::Disabled, "the admin's choice stands");
}
