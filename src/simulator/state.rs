//! The simulator's shared state: accounts, chat histories with the frames of their turns,
//! image uploads, the CLI door's logins, faults and counters.
//!
//! Every lock here is a `std::sync::Mutex` held for a few field updates only; no critical
//! section awaits, so the async handlers never block each other for long.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::jwt::JwtKey;
use super::logins::Logins;
use super::script::{Frame, Script, turn_frames};
use super::util::{now_ms, random_alnum};
use super::{Faults, SimAccount, SimConfig, SimStats};

/// Everything the handlers share, behind one `Arc`.
pub(crate) struct SimState {
    pub cfg: SimConfig,
    /// Signs and checks the session JWTs (a fresh random secret per simulator).
    pub jwt: JwtKey,
    pub inner: Mutex<Inner>,
    pub faults: Mutex<Faults>,
    pub stats: Mutex<SimStats>,
    /// The CLI door's refresh and access tokens (apart from `inner`: the two doors never need
    /// both locks at once).
    pub cli: Mutex<Logins>,
    /// Cancelled when the [`super::Simulator`] is dropped: stops sockets and turn tasks too.
    pub cancel: CancellationToken,
}

/// Accounts and chat histories.
#[derive(Default)]
pub(crate) struct Inner {
    /// By user id.
    pub accounts: HashMap<String, Account>,
    /// User id of the account created at start.
    pub first_user: String,
    /// By chat history id (Gen-1 client uuid or Gen-2 project id).
    pub histories: HashMap<String, Arc<History>>,
    /// Presigned image uploads, by upload id.
    pub uploads: HashMap<String, Upload>,
}

/// One presigned slot and, once PUT, its bytes.
pub(crate) struct Upload {
    pub media_type: String,
    pub content_length: u64,
    /// The final URL's file name (`<id>.<ext>`).
    pub file: String,
    pub bytes: Option<Vec<u8>>,
}

/// One simulated Clerk user with its session and `__client` cookie.
pub(crate) struct Account {
    pub user_id: String,
    pub org_id: String,
    pub session_id: String,
    /// The current `__client` value.
    pub client_cookie: String,
    /// The value before the last rotation, still accepted once more (a request in flight).
    pub previous_cookie: Option<String>,
    pub revoked: bool,
    /// Gen-2 team-wide model, a catalogue `key`.
    pub preferred_model: Option<String>,
    /// Credits used by accepted triggers (for `/billing`).
    pub daily_usage: u64,
    pub created_ms: u64,
}

impl Account {
    pub fn new() -> Account {
        Account {
            user_id: format!("user_{}", random_alnum(27)),
            org_id: format!("org_{}", random_alnum(27)),
            session_id: format!("sess_{}", random_alnum(27)),
            client_cookie: new_client_cookie(),
            previous_cookie: None,
            revoked: false,
            preferred_model: None,
            daily_usage: 0,
            created_ms: now_ms(),
        }
    }

    /// Whether `value` is a `__client` this account still honours.
    pub fn accepts_cookie(&self, value: &str) -> bool {
        self.client_cookie == value || self.previous_cookie.as_deref() == Some(value)
    }

    /// A new `__client` value; the current one becomes the grace value, the older one dies.
    pub fn rotate_cookie(&mut self) -> String {
        let next = new_client_cookie();
        self.previous_cookie = Some(std::mem::replace(&mut self.client_cookie, next.clone()));
        next
    }

    pub fn public(&self) -> SimAccount {
        SimAccount {
            user_id: self.user_id.clone(),
            org_id: self.org_id.clone(),
            session_id: self.session_id.clone(),
            cookie: format!(
                "__client={}; __client_uat=1764100000; __session=xyz",
                self.client_cookie
            ),
        }
    }
}

pub(crate) fn new_client_cookie() -> String {
    format!("sim_client_{}", random_alnum(32))
}

/// Which protocol generation created a history; it decides the WebSocket token and replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generation {
    Gen1,
    Gen2,
}

/// One chat history (a Gen-1 conversation or a Gen-2 hosted project).
pub(crate) struct History {
    pub user_id: String,
    pub org_id: String,
    pub generation: Generation,
    /// Gen-2 only: the project's workspace, required as `workspaceId` on the socket.
    pub workspace_id: Option<String>,
    pub log: Mutex<TurnLog>,
    /// Bumped on every new turn and every new frame; sockets wait on it instead of polling.
    pub changed: watch::Sender<u64>,
}

impl History {
    pub fn new(
        user_id: String,
        org_id: String,
        generation: Generation,
        workspace_id: Option<String>,
    ) -> History {
        History {
            user_id,
            org_id,
            generation,
            workspace_id,
            log: Mutex::new(TurnLog::default()),
            changed: watch::Sender::new(0),
        }
    }

    /// Wakes every socket of this history.
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// The turns of a history, each with the frames produced so far.
#[derive(Default)]
pub(crate) struct TurnLog {
    pub turns: Vec<Turn>,
}

pub(crate) struct Turn {
    pub prompt: String,
    pub reply: String,
    /// What its frames are made of (rebuilds them after compaction).
    pub script: Script,
    /// Frames produced so far (empty once `compacted`).
    pub frames: Vec<Frame>,
    /// The final `state{inProgress:false}` has been appended.
    pub done: bool,
    /// A finished turn whose frames were dropped to save memory; [`Turn::frames`] rebuilds them.
    pub compacted: bool,
    /// Accepted but never produces a frame (`Faults::silent`).
    pub silent: bool,
}

impl Turn {
    pub fn running(&self) -> bool {
        !self.done
    }

    /// The frames produced so far, rebuilt identically for a compacted turn.
    pub fn frames(&self) -> Cow<'_, [Frame]> {
        if self.compacted {
            Cow::Owned(turn_frames(&self.script, &self.prompt, &self.reply))
        } else {
            Cow::Borrowed(&self.frames)
        }
    }
}
