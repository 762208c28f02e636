//! Every Prometheus metric of the proxy, declared in one place with its help text.
//!
//! Labels are low-cardinality by construction: routes are the matched route templates, statuses
//! are numbers, error kinds are the upstream's fixed list (handed to [`handle`], so this file
//! depends on no layer above it), account states from a fixed set.
//! No label ever carries a key, a cookie, a model name typed by a client or a request id.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "el2a_http_requests_total";
pub const REQUEST_SECONDS: &str = "el2a_http_request_duration_seconds";
pub const TTFB_SECONDS: &str = "el2a_time_to_first_token_seconds";
pub const UPSTREAM_ERRORS: &str = "el2a_upstream_errors_total";
pub const JWT_MINTS: &str = "el2a_jwt_mints_total";
pub const WS_RECONNECTS: &str = "el2a_ws_reconnects_total";
pub const TURNS: &str = "el2a_turns_total";
pub const ACTIVE_STREAMS: &str = "el2a_active_streams";
pub const STORE_ERRORS: &str = "el2a_store_errors_total";
pub const STORE_WRITABLE: &str = "el2a_store_writable";
pub const ACCOUNTS: &str = "el2a_accounts";
pub const QUEUE_DEPTH: &str = "el2a_queue_depth";
pub const UPSTREAM_SETUP_SECONDS: &str = "el2a_upstream_setup_seconds";
pub const BUILD_INFO: &str = "el2a_build_info";
pub const CONTEXT_TURNS: &str = "el2a_context_turns_total";
pub const TOOL_CALL_ANSWERS: &str = "el2a_tool_call_answers_total";
pub const TOOL_CALL_REPAIRS: &str = "el2a_tool_call_repairs_total";
pub const OPEN_CONNECTIONS: &str = "el2a_open_connections";
pub const CONNECTIONS_REFUSED: &str = "el2a_connections_refused_total";
pub const HEADER_TIMEOUTS: &str = "el2a_header_timeouts_total";

/// Names of every declared metric (tests check that each is exported).
pub const ALL: &[&str] = &[
    REQUESTS,
    REQUEST_SECONDS,
    TTFB_SECONDS,
    UPSTREAM_ERRORS,
    JWT_MINTS,
    WS_RECONNECTS,
    TURNS,
    ACTIVE_STREAMS,
    STORE_ERRORS,
    STORE_WRITABLE,
    ACCOUNTS,
    QUEUE_DEPTH,
    UPSTREAM_SETUP_SECONDS,
    BUILD_INFO,
    CONTEXT_TURNS,
    TOOL_CALL_ANSWERS,
    TOOL_CALL_REPAIRS,
    OPEN_CONNECTIONS,
    CONNECTIONS_REFUSED,
    HEADER_TIMEOUTS,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle that renders `/metrics`.
/// `upstream_error_kinds` are the `kind` labels of [`UPSTREAM_ERRORS`] (the upstream's
/// `ErrorKind::LABELS`), each shown from the first scrape; calls after the first install nothing.
pub fn handle(upstream_error_kinds: &[&'static str]) -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                120.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .ok()?
                .install_recorder()
                .ok()?;
            describe(upstream_error_kinds);
            Some(recorder)
        })
        .as_ref()
}

fn describe(upstream_error_kinds: &[&'static str]) {
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by route template and status code"
    );
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request (streams: to the end), by route"
    );
    describe_histogram!(
        TTFB_SECONDS,
        Unit::Seconds,
        "Time from receiving a chat request to the first answer event from the upstream, by stream mode"
    );
    describe_histogram!(
        UPSTREAM_SETUP_SECONDS,
        Unit::Seconds,
        "Time the proxy spends before the upstream turn starts (JWT, trigger calls, WebSocket open), by generation"
    );
    describe_counter!(
        UPSTREAM_ERRORS,
        "Upstream failures by kind (cookie_rejected, network, status, stream_closed, ...)"
    );
    describe_counter!(JWT_MINTS, "Clerk session JWTs minted");
    describe_counter!(
        WS_RECONNECTS,
        "WebSocket reconnects to resume a dropped stream"
    );
    describe_counter!(
        TURNS,
        "Upstream turns started, by kind (new or continued conversation)"
    );
    describe_gauge!(ACTIVE_STREAMS, "Upstream turns in flight");
    describe_counter!(
        STORE_ERRORS,
        "Conversation store operations that failed (the request went on as a new conversation)"
    );
    describe_gauge!(
        STORE_WRITABLE,
        "1 while the store takes writes; 0 while the embedded file is closed after an I/O error (a full disk) and waits to be reopened"
    );
    describe_gauge!(
        ACCOUNTS,
        "Configured cto.new accounts by state (active, cooling, dead, disabled)"
    );
    describe_gauge!(QUEUE_DEPTH, "Requests waiting for a free account slot");
    describe_counter!(
        CONTEXT_TURNS,
        "Context turns sent upstream for transcripts over the prompt budget (each costs credits)"
    );
    describe_counter!(
        TOOL_CALL_ANSWERS,
        "Answers with an emulated tool-call block (web door), by outcome (parsed, repaired, degraded)"
    );
    describe_counter!(
        TOOL_CALL_REPAIRS,
        "Repair turns run because the model's tool-call block was unusable (each costs credits)"
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; its labels say the version and the upstream transport (plain or impersonate)"
    );
    describe_gauge!(
        OPEN_CONNECTIONS,
        "Client connections being served (at most MAX_CONNECTIONS)"
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Client connections answered 503 and closed because MAX_CONNECTIONS were open"
    );
    describe_counter!(
        HEADER_TIMEOUTS,
        "Client connections closed because no complete request headers came within HEADER_READ_TIMEOUT_SECS (slow, silent or idle clients)"
    );
    let transport = if cfg!(feature = "impersonate") {
        "impersonate"
    } else {
        "plain"
    };
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "transport" => transport)
        .set(1.0);
    // Make every declared series visible from the first scrape.
    for name in [
        JWT_MINTS,
        WS_RECONNECTS,
        STORE_ERRORS,
        CONTEXT_TURNS,
        TOOL_CALL_REPAIRS,
        CONNECTIONS_REFUSED,
        HEADER_TIMEOUTS,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for kind in upstream_error_kinds {
        metrics::counter!(UPSTREAM_ERRORS, "kind" => *kind).absolute(0);
    }
    for outcome in ["parsed", "repaired", "degraded"] {
        metrics::counter!(TOOL_CALL_ANSWERS, "outcome" => outcome).absolute(0);
    }
    for name in [ACTIVE_STREAMS, QUEUE_DEPTH, OPEN_CONNECTIONS] {
        metrics::gauge!(name).set(0.0);
    }
    metrics::gauge!(STORE_WRITABLE).set(1.0);
    for state in ["active", "cooling", "dead", "disabled"] {
        metrics::gauge!(ACCOUNTS, "state" => state).set(0.0);
    }
}

/// Counts one upstream failure (the single place where they are counted); `kind` is one of the
/// labels given to [`handle`].
pub fn upstream_error(kind: &'static str) {
    metrics::counter!(UPSTREAM_ERRORS, "kind" => kind).increment(1);
}

/// The Prometheus text for `/metrics` (empty until [`handle`] installed the recorder).
pub fn render() -> String {
    HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
