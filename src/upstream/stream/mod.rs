//! The streaming WebSocket (protocol notes §5.1): its URL, the handshake with browser headers,
//! and [`TurnReader`], which reads one turn from it on demand.
//!
//! # Layout
//! - `reader`: [`TurnReader`]: frames into the [`TurnTracker`], the `ping` heartbeat, the idle
//!   timeout, closing the socket when the turn ends or the consumer goes away;
//! - [`reconnect`]: replacing a socket that dropped mid-turn (Gen-1 replays, Gen-2's `history`
//!   snapshot), with backoff and a budget.

mod reader;
pub mod reconnect;

use std::sync::Arc;

use super::frame::TurnTracker;
use super::transport::{Socket, Transport, WS_CALL};
use super::{UpstreamConfig, UpstreamError};

pub use reader::TurnReader;

/// How the socket authenticates itself in its query string.
#[derive(Debug, Clone, Copy)]
pub enum WsAuth<'a> {
    /// `?token=<user_id>`.
    Gen1 { user_id: &'a str },
    /// `?token=<user_id>:<org_id>&workspaceId=<ws>`.
    Gen2 {
        user_id: &'a str,
        org_id: Option<&'a str>,
        workspace_id: Option<&'a str>,
    },
}

/// The stream URL of a chat history. The `token` is the Clerk user id, not a secret.
pub fn ws_url(cfg: &UpstreamConfig, chat_history_id: &str, auth: WsAuth<'_>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    match auth {
        WsAuth::Gen1 { user_id } => {
            q.append_pair("token", user_id);
        }
        WsAuth::Gen2 {
            user_id,
            org_id,
            workspace_id,
        } => {
            match org_id {
                Some(org) => q.append_pair("token", &format!("{user_id}:{org}")),
                None => q.append_pair("token", user_id),
            };
            if let Some(ws) = workspace_id {
                q.append_pair("workspaceId", ws);
            }
        }
    }
    format!(
        "{}/engine-agent/chat-histories/{}/buffer/stream?{}",
        cfg.ws_base_url,
        url::form_urlencoded::byte_serialize(chat_history_id.as_bytes()).collect::<String>(),
        q.finish()
    )
}

/// Connects (handshake bounded by `request_timeout`); the turn is read as its events are asked
/// for ([`TurnReader::next`]).
pub async fn open(
    transport: &Transport,
    cfg: &Arc<UpstreamConfig>,
    url: &str,
    tracker: TurnTracker,
) -> Result<TurnReader, UpstreamError> {
    let ws = connect(transport, cfg, url).await?;
    Ok(TurnReader::new(
        ws,
        transport.clone(),
        url.to_string(),
        Arc::clone(cfg),
        tracker,
    ))
}

/// [`open`] through a transport made for `cfg`, for the tests of this module.
#[cfg(test)]
async fn open_for_test(
    cfg: &UpstreamConfig,
    url: &str,
    tracker: TurnTracker,
) -> Result<TurnReader, UpstreamError> {
    open(&Transport::new(cfg)?, &Arc::new(cfg.clone()), url, tracker).await
}

/// The WebSocket handshake with the page's `Origin` and `User-Agent`, bounded by the request
/// timeout.
pub(super) async fn connect(
    transport: &Transport,
    cfg: &UpstreamConfig,
    url: &str,
) -> Result<Socket, UpstreamError> {
    let mut headers = ::http::HeaderMap::new();
    for (name, value) in [
        (::http::header::ORIGIN, cfg.origin.as_str()),
        (::http::header::USER_AGENT, cfg.user_agent.as_str()),
    ] {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    }
    match tokio::time::timeout(cfg.request_timeout, transport.websocket(url, headers)).await {
        Err(_) => Err(UpstreamError::Network {
            call: WS_CALL,
            detail: format!("handshake timed out after {:?}", cfg.request_timeout),
        }),
        Ok(result) => result,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod resume_tests;
