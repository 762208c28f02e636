//! The embedded store's writer: one long-lived thread that takes every write from a channel and
//! commits them in batches, one redb transaction (and one `fsync`) per batch.
//!
//! Why a thread and not a task per write: redb blocks, and a `spawn_blocking` per write put a
//! blocking thread behind every completing stream (64-100 threads after a bench run). One
//! thread bounds that to one, and batching makes a burst of completions cost one commit: while
//! a commit runs, the next writes queue up and go together in the next one.
//!
//! Two kinds of writes:
//! - conversation puts and takes ([`Job::Put`], [`Job::Remove`]): the [`Pending`] overlay
//!   answers reads until the write is settled, so the caller need not wait (takes never do;
//!   puts may, see `embedded::WAIT_FOR_PUT_COMMIT`); a write nobody waits for that fails is
//!   counted in `el2a_store_errors_total` and logged here (the conversation's next turn then
//!   starts a new upstream history, as when a put failed before);
//! - everything else ([`Job::Call`]: accounts, secrets, purges, counts, flushes): the caller
//!   awaits the outcome of the commit. Since jobs run in queue order, an awaited write also
//!   makes every write queued before it durable; [`super::Store::flush`] is such a write.
//!
//! An error inside one job fails its whole batch (the transaction is dropped): such errors are
//! redb's own (an I/O error closes the file, see `redb_file`), not a single bad record.

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use redb::WriteTransaction;
use tokio::sync::oneshot;

use super::pending::Pending;
use super::redb_file::StoreFile;
use super::tables;
use super::{StoreError, StoreLimits};

/// At most this many jobs share one transaction (bounds the time a batch holds the file).
const MAX_BATCH: usize = 1024;

/// A write for the writer thread.
pub(super) enum Job {
    /// A conversation put, stamped when it was queued (`seq` as in [`Pending`]); `done` hears
    /// the outcome of its commit when the caller waits for it.
    Put {
        key: String,
        stamp: u64,
        json: Vec<u8>,
        seq: u64,
        done: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
    /// A conversation take: the mapping is deleted.
    Remove { key: String, seq: u64 },
    /// A write whose caller awaits the outcome.
    Call(Box<dyn Task>),
    /// Nothing to write: wakes the writer so that it reopens a closed file when that is due.
    Nudge,
}

/// A write whose caller waits: its step inside the batch's transaction, then the outcome.
pub(super) trait Task: Send {
    fn apply(&mut self, txn: &WriteTransaction, limits: StoreLimits) -> Result<(), redb::Error>;
    /// Called once with the outcome of the batch's commit.
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
}

/// A [`Task`] from a closure: its value is sent back once the batch is committed.
pub(super) struct Call<T, F> {
    op: Option<F>,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Call<T, F>
where
    T: Send + 'static,
    F: FnOnce(&WriteTransaction, StoreLimits) -> Result<T, redb::Error> + Send + 'static,
{
    /// The task and the receiver of its result.
    pub fn task(op: F) -> (Box<dyn Task>, oneshot::Receiver<Result<T, StoreError>>) {
        let (reply, rx) = oneshot::channel();
        let call = Call {
            op: Some(op),
            value: None,
            reply,
        };
        (Box::new(call), rx)
    }
}

impl<T, F> Task for Call<T, F>
where
    T: Send + 'static,
    F: FnOnce(&WriteTransaction, StoreLimits) -> Result<T, redb::Error> + Send + 'static,
{
    fn apply(&mut self, txn: &WriteTransaction, limits: StoreLimits) -> Result<(), redb::Error> {
        if let Some(op) = self.op.take() {
            self.value = Some(op(txn, limits)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>) {
        let Call { value, reply, .. } = *self;
        let result = outcome
            .and_then(|()| value.ok_or_else(|| StoreError::Io("the write was not applied".into())));
        let _ = reply.send(result);
    }
}

/// The sending side of the writer thread; dropping it drains the queue and joins the thread.
pub(super) struct Writer {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

pub(super) fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Writer {
    /// Starts the thread.
    pub fn start(
        file: Arc<StoreFile>,
        pending: Arc<Mutex<Pending>>,
        limits: StoreLimits,
    ) -> Result<Writer, String> {
        let (jobs, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&rx, &file, &pending, limits))
            .map_err(|e| format!("cannot start the store's writer thread: {e}"))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues a job. Callers queue conversation writes while holding the [`Pending`] lock, so
    /// that queue order is sequence order.
    pub fn send(&self, job: Job) -> Result<(), StoreError> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Io("the store's writer thread has stopped".into()))
    }
}

impl Drop for Writer {
    /// Closing the channel lets the thread commit what is queued and end; joining it means the
    /// file is closed (and its lock released) when the store is gone.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: a batch is whatever is queued when the previous commit ends.
fn run(rx: &Receiver<Job>, file: &StoreFile, pending: &Mutex<Pending>, limits: StoreLimits) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit(batch, file, pending, limits);
    }
}

/// Applies a batch in one transaction, then settles its conversation writes and answers its
/// callers.
fn commit(mut batch: Vec<Job>, file: &StoreFile, pending: &Mutex<Pending>, limits: StoreLimits) {
    let writes = batch.iter().any(|j| !matches!(j, Job::Nudge));
    let outcome = file.call(|db| {
        if !writes {
            return Ok(());
        }
        let txn = db.begin_write()?;
        for job in &mut batch {
            match job {
                Job::Put {
                    key, stamp, json, ..
                } => tables::put_conversation(&txn, key, *stamp, json, limits)?,
                Job::Remove { key, .. } => tables::remove_conversation(&txn, key).map(drop)?,
                Job::Call(task) => task.apply(&txn, limits)?,
                Job::Nudge => {}
            }
        }
        Ok(txn.commit()?)
    });
    // Conversation writes nobody waits for: their failure is reported here.
    let mut lost = 0u64;
    {
        let mut pending = lock(pending);
        for job in &batch {
            match job {
                Job::Put { key, seq, done, .. } => {
                    pending.settled(key, *seq);
                    lost += u64::from(done.is_none());
                }
                Job::Remove { key, seq } => {
                    pending.settled(key, *seq);
                    lost += 1;
                }
                Job::Call(_) | Job::Nudge => {}
            }
        }
    }
    if let Err(e) = &outcome
        && lost > 0
    {
        metrics::counter!(crate::metrics::STORE_ERRORS).increment(lost);
        tracing::warn!(error = %e, conversations = lost, "could not store conversations; their next turns will start new histories");
    }
    for job in batch {
        match job {
            Job::Call(task) => task.finish(outcome.clone()),
            Job::Put {
                done: Some(done), ..
            } => {
                let _ = done.send(outcome.clone());
            }
            _ => {}
        }
    }
}
