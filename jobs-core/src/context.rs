//! `JobContext`: an executor's handle on the job it runs, and `StopToken`.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use crate::session::Inner;
use crate::{
    Error, JobId, JobSpec, Live, Payload, ProgressRecord, Record, Store, StoreError, Stream,
};

/// A stop request, seen from the job's side: a flag to check, a future to
/// await, and a blocking wait for plain threads. Cloning shares the request.
#[derive(Clone)]
pub struct StopToken {
    inner: Arc<StopInner>,
}

struct StopInner {
    flag: AtomicBool,
    tx: watch::Sender<bool>,
    lock: Mutex<()>,
    cv: Condvar,
}

impl fmt::Debug for StopToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopToken")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Default for StopToken {
    fn default() -> Self {
        Self::new()
    }
}

impl StopToken {
    /// A token with no stop requested.
    pub fn new() -> Self {
        StopToken {
            inner: Arc::new(StopInner {
                flag: AtomicBool::new(false),
                tx: watch::Sender::new(false),
                lock: Mutex::new(()),
                cv: Condvar::new(),
            }),
        }
    }

    /// Requests the stop (idempotent).
    pub fn trigger(&self) {
        let _g = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.tx.send_replace(true);
        self.inner.cv.notify_all();
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Resolves once a stop is requested.
    pub async fn stopped(&self) {
        let mut rx = self.inner.tx.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Blocks the calling thread until a stop is requested or `timeout`
    /// passes; returns whether a stop was requested. For code on plain threads.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (_g, _) = self
            .inner
            .cv
            .wait_timeout_while(guard, timeout, |_| !self.is_stopped())
            .unwrap_or_else(|p| p.into_inner());
        self.is_stopped()
    }
}

/// What the session keeps per job that the running work touches directly.
pub(crate) struct JobCell {
    pub(crate) id: JobId,
    pub(crate) instance_id: Uuid,
    /// Set when the job finished: later records are dropped.
    pub(crate) closed: AtomicBool,
    /// Holds sequence assignment and append together, so one job's records
    /// are stored in the order of their sequence numbers.
    pub(crate) emit_lock: Mutex<()>,
    /// Bumped on every record and state change of this job.
    pub(crate) changed: watch::Sender<u64>,
    pub(crate) stop: StopToken,
    pub(crate) exit_code: Mutex<Option<i32>>,
    pub(crate) store_error: Mutex<Option<String>>,
}

impl JobCell {
    pub(crate) fn new(id: JobId, instance_id: Uuid) -> Self {
        JobCell {
            id,
            instance_id,
            closed: AtomicBool::new(false),
            emit_lock: Mutex::new(()),
            changed: watch::Sender::new(0),
            stop: StopToken::new(),
            exit_code: Mutex::new(None),
            store_error: Mutex::new(None),
        }
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// An executor's handle on the job it runs: emit records, see stop
/// requests, report Blocked, set the exit code, open child jobs.
pub struct JobContext {
    pub(crate) cell: Arc<JobCell>,
    pub(crate) inner: Weak<Inner>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) seq: Arc<AtomicU64>,
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("job", &self.cell.id)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.cell.id
    }

    /// The job's instance id: unique across sessions, so an executor can
    /// name what it keeps outside the session (files of a detached job) by it.
    pub fn instance_id(&self) -> Uuid {
        self.cell.instance_id
    }

    /// Appends a record to the job's cache. Returns `false` if the record was
    /// dropped because the job is already finished (or was abandoned).
    pub fn emit(&self, record: Record) -> bool {
        if self.cell.closed.load(Ordering::Acquire) {
            return false;
        }
        let res = {
            let _g = self
                .cell
                .emit_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if self.cell.closed.load(Ordering::Acquire) {
                return false;
            }
            let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
            self.store.append(self.cell.id, seq, record)
        };
        self.stored(res)
    }

    /// Tells the job's watchers about stored records, or keeps the store's
    /// failure for the job's end.
    fn stored(&self, res: Result<(), StoreError>) -> bool {
        match res {
            Ok(()) => {
                self.cell.bump();
                true
            }
            Err(e) => {
                let mut slot = self
                    .cell
                    .store_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| format!("could not store a record: {e}"));
                false
            }
        }
    }

    /// Emits records together with a checkpoint of the executor's own: how
    /// far it got, to go on from after a restore (see
    /// [`Store::append_checkpointed`]). A durable store keeps the records
    /// and the checkpoint together or neither, so an executor that resumes
    /// from [`JobContext::checkpoint`] neither loses nor repeats a record.
    /// Returns `false` if the records were dropped (as [`emit`](Self::emit)).
    ///
    /// [`Store::append_checkpointed`]: crate::Store::append_checkpointed
    pub fn emit_checkpointed(&self, records: Vec<Record>, checkpoint: Vec<u8>) -> bool {
        if self.cell.closed.load(Ordering::Acquire) {
            return false;
        }
        let res = {
            let _g = self
                .cell
                .emit_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if self.cell.closed.load(Ordering::Acquire) {
                return false;
            }
            let n = records.len() as u64;
            let first = self.seq.fetch_add(n, Ordering::SeqCst) + 1;
            let numbered = (first..).zip(records).collect();
            self.store
                .append_checkpointed(self.cell.id, numbered, checkpoint)
        };
        self.stored(res)
    }

    /// Whether the session's store keeps checkpoints: if it does, the
    /// absence of one means no record of the job was kept yet, and
    /// [`checkpoint`](Self::checkpoint) is all a resuming executor needs.
    pub fn keeps_checkpoints(&self) -> bool {
        self.store.keeps_checkpoints()
    }

    /// The checkpoint last stored with [`emit_checkpointed`](Self::emit_checkpointed),
    /// for an executor that resumes a job of an earlier session.
    pub fn checkpoint(&self) -> Option<Vec<u8>> {
        self.store.checkpoint(self.cell.id).ok().flatten()
    }

    /// Emits an output record of text.
    pub fn output(&self, text: impl Into<String>) -> bool {
        self.emit(Record::text(Stream::Output, text))
    }

    /// Emits an output record holding a live value, handed back by reference.
    pub fn output_live<T: Any + Send + Sync>(&self, value: Arc<T>) -> bool {
        self.emit(Record::new(Stream::Output, Payload::Live(Live::new(value))))
    }

    /// Emits a structured output value.
    pub fn output_value(&self, value: serde_json::Value) -> bool {
        self.emit(Record::new(Stream::Output, Payload::Value(value)))
    }

    /// Emits a non-terminating error record.
    pub fn error(&self, text: impl Into<String>) -> bool {
        self.emit(Record::text(Stream::Error, text))
    }

    /// Emits a warning.
    pub fn warning(&self, text: impl Into<String>) -> bool {
        self.emit(Record::text(Stream::Warning, text))
    }

    /// Emits a verbose message.
    pub fn verbose(&self, text: impl Into<String>) -> bool {
        self.emit(Record::text(Stream::Verbose, text))
    }

    /// Emits a debug message.
    pub fn debug(&self, text: impl Into<String>) -> bool {
        self.emit(Record::text(Stream::Debug, text))
    }

    /// Emits an informational message.
    pub fn information(&self, text: impl Into<String>) -> bool {
        self.emit(Record::text(Stream::Information, text))
    }

    /// Emits a progress report.
    pub fn progress(&self, percent: Option<f64>, activity: impl Into<String>) -> bool {
        self.emit(Record::new(
            Stream::Progress,
            Payload::Progress(ProgressRecord {
                percent,
                activity: activity.into(),
                status: String::new(),
            }),
        ))
    }

    /// Whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.cell.stop.is_stopped()
    }

    /// Resolves once a stop is requested.
    pub async fn stopped(&self) {
        self.cell.stop.stopped().await
    }

    /// The job's stop token, to hand to a thread or a script engine.
    pub fn stop_token(&self) -> StopToken {
        self.cell.stop.clone()
    }

    /// Records the work's exit code (kept whether the job completes or fails).
    pub fn set_exit_code(&self, code: i32) {
        *self
            .cell
            .exit_code
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(code);
    }

    /// Marks a job whose executor [reports its start](crate::JobExecutor::reports_start)
    /// Running (from NotStarted); a no-op if it already is.
    pub fn set_running(&self) -> Result<(), Error> {
        let inner = self.inner.upgrade().ok_or(Error::closed())?;
        inner.set_running(self.cell.id)
    }

    /// Changes where the job runs (e.g. the node a scheduler picked).
    pub fn set_location(&self, location: impl Into<String>) -> Result<(), Error> {
        let inner = self.inner.upgrade().ok_or(Error::closed())?;
        inner.set_location(self.cell.id, location.into())
    }

    /// Marks the job Blocked (`true`) or Running again (`false`).
    pub fn set_blocked(&self, blocked: bool) -> Result<(), Error> {
        let inner = self.inner.upgrade().ok_or(Error::closed())?;
        inner.set_blocked(self.cell.id, blocked)
    }

    /// Opens a child job of this job. A spec with an empty type name runs on
    /// this job's executor. The child is queued behind this job's child
    /// throttle; its records are received through this job.
    pub fn start_child(&self, spec: JobSpec) -> Result<JobId, Error> {
        let inner = self.inner.upgrade().ok_or(Error::closed())?;
        inner.start_job(spec, Some(self.cell.id))
    }

    /// Resolves once every child opened so far is finished.
    pub async fn wait_children(&self) {
        loop {
            let Some(inner) = self.inner.upgrade() else {
                return;
            };
            let mut rx = self.cell.changed.subscribe();
            if inner.children_finished(self.cell.id) {
                return;
            }
            drop(inner);
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}
