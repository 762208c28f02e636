//! Errors of the store layer: [`StoreError`], shared by every backend.
//!
//! Callers treat an error on a conversation lookup as "no mapping" (the conversation starts a
//! new upstream history), so these errors degrade service rather than fail requests.

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The embedded database file could not be opened (corrupt, locked, unreadable).
    #[error(
        "cannot open the store file {path}: {detail}. Move the file aside (conversation memory will start empty) or fix its permissions, then start again"
    )]
    Open { path: String, detail: String },
    /// Redis could not be reached or answered an error.
    #[error("redis is unavailable: {0}")]
    Redis(String),
    /// A read or write of the embedded database failed (not an I/O error of its file).
    #[error("store I/O failed: {0}")]
    Io(String),
    /// The embedded database file hit an I/O error (a full disk, a failing device) and is
    /// closed until a reopen succeeds (see `store::recovery`).
    #[error(
        "the store file {path} cannot be written: {detail}. Free disk space or fix the device; the proxy reopens the file by itself"
    )]
    Unwritable { path: String, detail: String },
    /// A stored value could not be decoded.
    #[error("a stored record could not be decoded: {0}")]
    Decode(String),
}
