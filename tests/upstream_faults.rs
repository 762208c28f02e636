//! The real cto.new client (`upstream::EngineClient`) against the simulator's faults, over real
//! sockets: cookie rotation and revocation, the Cloudflare challenge, a refused token, trigger
//! errors, unknown models, dropped and silent sockets, a dropped turn, expired sessions and a
//! persisted one.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::upstream::{WORDS, account, client, collect, request, sim};
use enginelabs_2api::simulator::{Faults, SimConfig, reply_text};
use enginelabs_2api::upstream::{Account, EngineClient, ProtocolChoice, TurnEvent, UpstreamError};

#[tokio::test]
async fn cookie_rotation_is_published() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let before = acc.current_client_cookie();
    let mut rx = acc.subscribe_cookie();
    let identity = client.ensure_ready(&acc).await.expect("ready");
    assert_eq!(identity.user_id, sim.account().user_id);
    assert_eq!(
        identity.org_id.as_deref(),
        Some(sim.account().org_id.as_str())
    );
    assert!(rx.has_changed().expect("sender alive"));
    let rotated = rx.borrow_and_update().clone();
    assert_ne!(rotated, before);
    assert_eq!(rotated, acc.current_client_cookie());
    assert!(sim.account().cookie.contains(&rotated));
}

#[tokio::test]
async fn revoked_cookie_is_rejected() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    sim.revoke(&sim.account().user_id);
    let err = client
        .ensure_ready(&account(&sim))
        .await
        .expect_err("revoked");
    assert!(
        matches!(err, UpstreamError::CookieRejected { .. }),
        "{err:?}"
    );

    sim.set_faults(Faults {
        revoked_as_empty_client: true,
        ..Faults::default()
    });
    let err = client
        .ensure_ready(&account(&sim))
        .await
        .expect_err("revoked");
    assert!(
        matches!(err, UpstreamError::CookieRejected { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn cloudflare_challenge_is_not_a_dead_cookie() {
    let sim = sim(SimConfig::default()).await;
    sim.set_faults(Faults {
        cloudflare_challenge: true,
        ..Faults::default()
    });
    let client = client(&sim, ProtocolChoice::Gen2);
    let err = client
        .ensure_ready(&account(&sim))
        .await
        .expect_err("challenged");
    assert!(
        matches!(err, UpstreamError::CloudflareChallenge { status: 403, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_token_is_reminted_once() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    sim.set_faults(Faults {
        trigger_status: Some(401),
        trigger_status_count: 1,
        ..Faults::default()
    });
    let out = collect(
        client
            .start_turn(&acc, request("gpt_5_4", "retry me"))
            .await
            .expect("turn starts after one retry"),
    )
    .await;
    assert_eq!(out.content, reply_text("retry me", 1, WORDS));
    assert_eq!(acc.mint_count(), 2);

    // Refused twice: the session is no good.
    sim.set_faults(Faults {
        trigger_status: Some(403),
        trigger_status_count: 2,
        ..Faults::default()
    });
    let err = client
        .start_turn(&acc, request("gpt_5_4", "again"))
        .await
        .err()
        .expect("refused twice");
    assert!(
        matches!(err, UpstreamError::CookieRejected { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn trigger_errors_are_mapped() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen1);
    let acc = account(&sim);
    for (status, check) in [
        (
            413u16,
            (|e: &UpstreamError| matches!(e, UpstreamError::PromptTooLarge(_)))
                as fn(&UpstreamError) -> bool,
        ),
        (429, |e| {
            matches!(
                e,
                UpstreamError::RateLimited {
                    retry_after: Some(_),
                    ..
                }
            )
        }),
        (500, |e| {
            matches!(e, UpstreamError::Status { status: 500, .. })
        }),
    ] {
        sim.set_faults(Faults {
            trigger_status: Some(status),
            trigger_status_count: 1,
            ..Faults::default()
        });
        let err = client
            .start_turn(&acc, request("GPT5", "x"))
            .await
            .err()
            .expect("fails");
        assert!(check(&err), "{status}: {err:?}");
    }
}

#[tokio::test]
async fn unknown_model_is_reported() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let err = client
        .start_turn(&account(&sim), request("no-such-model", "x"))
        .await
        .err()
        .expect("unknown");
    assert!(matches!(err, UpstreamError::UnknownModel(ref m) if m == "no-such-model"));
    assert!(sim.stats().triggers.is_empty());
}

#[tokio::test]
async fn dropped_socket_and_silence_fail_the_turn() {
    let sim = sim(SimConfig::default()).await;
    // A Gen-2 drop mid-turn whose snapshot does not hold the answer so far cannot be resumed.
    sim.set_faults(Faults {
        ws_drop_after: Some(2),
        slow_frame_ms: 20,
        history_without_running_turn: true,
        ..Faults::default()
    });
    let client_a = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let out = collect(
        client_a
            .start_turn(&acc, request("gpt_5_4", "drop"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert!(matches!(out.end, Err(UpstreamError::StreamClosed(_))));

    sim.set_faults(Faults {
        silent: true,
        ..Faults::default()
    });
    let mut cfg = client_a.config().clone();
    cfg.idle_timeout = Duration::from_millis(300);
    cfg.ping_interval = Duration::from_secs(60);
    let quiet = EngineClient::new(cfg).expect("client");
    let out = collect(
        quiet
            .start_turn(&acc, request("gpt_5_4", "silence"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert!(matches!(out.end, Err(UpstreamError::IdleTimeout(_))));
}

#[tokio::test]
async fn dropping_the_turn_closes_the_socket() {
    let sim = sim(SimConfig {
        frame_delay: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let mut turn = client
        .start_turn(&acc, request("gpt_5_4", "long answer"))
        .await
        .expect("turn starts");
    let first = turn.next().await.expect("an event").expect("no error");
    assert!(matches!(first, TurnEvent::Content(_)));
    drop(turn);
    // Wait (bounded) for the simulator to see the close.
    for _ in 0..100 {
        if sim.stats().ws_closed_early == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.stats().ws_closed_early, 1);
    assert_eq!(sim.stats().ws_open_now, 0);
}

#[tokio::test]
async fn expired_session_and_tokens_are_recovered() {
    let sim = sim(SimConfig {
        token_ttl: Duration::from_secs(3),
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let first = client.ensure_ready(&acc).await.expect("ready");
    // A re-login elsewhere replaced the session: minting with the old id answers 404.
    let new_sid = sim.replace_session(&first.user_id);
    acc.invalidate_jwt();
    let out = collect(
        client
            .start_turn(&acc, request("gpt_5_4", "after relogin"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert_eq!(out.content, reply_text("after relogin", 1, WORDS));
    assert_eq!(acc.identity().expect("identity").session_id, new_sid);
    assert_eq!(acc.mint_count(), 2);
}

#[tokio::test]
async fn persisted_session_skips_discovery_and_side_calls_work() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let sa = sim.account();
    let acc = Arc::new(
        Account::with_session("persisted", &sa.cookie, Some(sa.session_id.clone()))
            .expect("account"),
    );
    let identity = client.ensure_ready(&acc).await.expect("ready");
    assert_eq!(identity.user_id, sa.user_id);
    assert_eq!(sim.stats().client_calls, 0);

    let turn = client
        .start_turn(&acc, request("gpt_5_4", "short"))
        .await
        .expect("turn starts");
    let history = turn.history.clone();
    collect(turn).await.end.expect("finished");
    client
        .delete_history(&acc, &history)
        .await
        .expect("deleted");
    assert_eq!(sim.stats().deletions, 1);
    let billing = client.billing(&acc).await.expect("billing");
    assert!(billing.is_object());
}
