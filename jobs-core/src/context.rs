//! `JobContext`: an executor's handle on the job it runs.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use uuid::Uuid;

use crate::cell::{JobCell, StopToken};
use crate::{
    Error, JobId, JobSpec, Live, Payload, ProgressRecord, Record, Store, StoreError, Stream,
};

/// What a job's context asks of the session that runs the job. The
/// session implements it; a context holds it weakly, so a job that outlives
/// its session gets [`Error::closed`] instead of keeping the session alive.
pub(crate) trait JobHost: Send + Sync {
    /// Marks a job that reports its own start Running.
    fn set_running(&self, id: JobId) -> Result<(), Error>;
    /// Changes where a job runs.
    fn set_location(&self, id: JobId, location: String) -> Result<(), Error>;
    /// Marks a job Blocked or Running again.
    fn set_blocked(&self, id: JobId, blocked: bool) -> Result<(), Error>;
    /// Marks a job Disconnected or Running again.
    fn set_disconnected(&self, id: JobId, disconnected: bool) -> Result<(), Error>;
    /// Opens a child job of `parent`.
    fn start_child(self: Arc<Self>, spec: JobSpec, parent: JobId) -> Result<JobId, Error>;
    /// Whether every child of `id` opened so far is finished.
    fn children_finished(&self, id: JobId) -> bool;
    /// Counts another attempt the executor began (see `session/attempts.rs`).
    fn count_attempt(&self, id: JobId) -> Result<u32, Error>;
    /// Lowers the throttle of a job's parent (see `session/siblings.rs`).
    fn limit_siblings(&self, id: JobId, limit: usize) -> Result<(), Error>;
    /// Whether the session's runtime is known to drive I/O and time.
    fn drives_io(&self) -> bool;
}

/// An executor's handle on the job it runs: emit records, see stop
/// requests, report Blocked, set the exit code, open child jobs.
pub struct JobContext {
    pub(crate) cell: Arc<JobCell>,
    pub(crate) host: Weak<dyn JobHost>,
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
        self.store_while_open(|| {
            let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
            self.store.append(self.cell.id, seq, record)
        })
    }

    /// Runs `store` (which numbers and stores records) under the job's emit
    /// lock, unless the job is finished; `false` if it was, or if the store
    /// failed.
    fn store_while_open(&self, store: impl FnOnce() -> Result<(), StoreError>) -> bool {
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
            store()
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
        self.store_while_open(|| {
            let n = records.len() as u64;
            let first = self.seq.fetch_add(n, Ordering::SeqCst) + 1;
            let numbered = (first..).zip(records).collect();
            self.store
                .append_checkpointed(self.cell.id, numbered, checkpoint)
        })
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

    /// How the requested stop should end the work: the first signal and
    /// the grace before SIGKILL, as `jobctl stop --signal --grace` asked.
    pub fn stop_options(&self) -> crate::StopOptions {
        self.cell.stop.options()
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
        let inner = self.host.upgrade().ok_or(Error::closed())?;
        inner.set_running(self.cell.id)
    }

    /// Changes where the job runs (e.g. the node a scheduler picked).
    pub fn set_location(&self, location: impl Into<String>) -> Result<(), Error> {
        let inner = self.host.upgrade().ok_or(Error::closed())?;
        inner.set_location(self.cell.id, location.into())
    }

    /// Counts one more attempt of the job's work, begun by the executor
    /// itself (say on another host after the first could not be reached),
    /// and returns the job's new `attempts`. Retries left stay left.
    pub fn count_attempt(&self) -> Result<u32, Error> {
        let inner = self.host.upgrade().ok_or(Error::closed())?;
        inner.count_attempt(self.cell.id)
    }

    /// Lowers how many of this job's siblings (its batch's children) run at
    /// once to at most `limit` (at least 1); never raises it. For an
    /// executor that learns its batch can run fewer at once than the
    /// batch's throttle says, say because hosts it spreads items over were
    /// retired: the items beyond stay queued, NotStarted. No-op for a job
    /// without a parent.
    pub fn limit_siblings(&self, limit: usize) -> Result<(), Error> {
        let inner = self.host.upgrade().ok_or(Error::closed())?;
        inner.limit_siblings(self.cell.id, limit)
    }

    /// Whether the runtime the job runs on is known to drive I/O and
    /// timers: the session built it itself (`Session::new` outside a
    /// runtime), with both enabled. An executor may then register its I/O
    /// there rather than on a runtime of its own. `false` for a runtime the
    /// session was given, which may lack either.
    pub fn runtime_drives_io(&self) -> bool {
        self.host.upgrade().is_some_and(|h| h.drives_io())
    }

    /// Marks the job Blocked (`true`) or Running again (`false`).
    pub fn set_blocked(&self, blocked: bool) -> Result<(), Error> {
        let inner = self.host.upgrade().ok_or(Error::closed())?;
        inner.set_blocked(self.cell.id, blocked)
    }

    /// Marks the job Disconnected (`true`: the work goes on somewhere this
    /// side cannot reach now) or Running again (`false`). A parent with a
    /// Disconnected child and no Failed one shows Disconnected. A Suspending
    /// or Suspended job stays so either way (`true` is refused with
    /// `IllegalTransition`, `false` changes nothing): its work is paused
    /// wherever it is.
    pub fn set_disconnected(&self, disconnected: bool) -> Result<(), Error> {
        let inner = self.host.upgrade().ok_or(Error::closed())?;
        inner.set_disconnected(self.cell.id, disconnected)
    }

    /// Opens a child job of this job. A spec with an empty type name runs on
    /// this job's executor. The child is queued behind this job's child
    /// throttle; its records are received through this job.
    pub fn start_child(&self, spec: JobSpec) -> Result<JobId, Error> {
        let inner = self.host.upgrade().ok_or(Error::closed())?;
        inner.start_child(spec, self.cell.id)
    }

    /// Resolves once every child opened so far is finished.
    pub async fn wait_children(&self) {
        loop {
            let Some(inner) = self.host.upgrade() else {
                return;
            };
            let mut rx = self.cell.watch();
            if inner.children_finished(self.cell.id) {
                return;
            }
            drop(inner);
            rx.changed().await;
        }
    }
}
