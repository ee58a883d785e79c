//! `ProcessExecutor`: the `JobExecutor` of BackgroundJobs, its options and
//! the runtime its process I/O is registered with.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs_core::{async_trait, JobContext, JobExecutor, JobFailure, JobInfo, JobSpec, SuspendError};
use nix::sys::signal::Signal;
use tokio::runtime::{Handle, Runtime};

use crate::lent::Lent;
use crate::pause::Groups;
use crate::spec::{ProcessSpec, TYPE_NAME};
use crate::watcher::Watcher;
use crate::{attached, detached};

/// The default number of threads of an executor's I/O runtime.
pub const DEFAULT_IO_THREADS: usize = 2;

/// The default time a stopped job gets between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Runs [`ProcessSpec`]s as process jobs (type [`TYPE_NAME`]).
///
/// One executor serves any number of jobs at once. Its process I/O runs on
/// the session's runtime when the session built that runtime itself
/// ([`JobContext::runtime_drives_io`]), else on a small tokio runtime of
/// its own (two threads by default, started on first use; see
/// [`ProcessExecutor::io_threads`]), so it works under any session
/// runtime, with or without an I/O driver. With
/// [`ProcessExecutor::on_session_runtime`] it always uses the session's.
/// Dropping the executor ends the process trees of its jobs that are still
/// running, detached ones excepted.
pub struct ProcessExecutor {
    pub(crate) grace: Duration,
    detached_dir: Option<PathBuf>,
    pub(crate) watcher: Arc<Watcher>,
    io: Mutex<Option<Runtime>>,
    /// Whether process I/O runs on the session's runtime rather than on a
    /// runtime of the executor's own.
    session_io: bool,
    /// Whether it does when the session says its runtime drives I/O.
    auto_io: bool,
    io_threads: usize,
    groups: Arc<Groups>,
}

impl std::fmt::Debug for ProcessExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessExecutor")
            .field("grace", &self.grace)
            .field("detached_dir", &self.detached_dir)
            .field("io_threads", &self.io_threads)
            .field("session_io", &self.session_io)
            .field("auto_io", &self.auto_io)
            .finish_non_exhaustive()
    }
}

impl Default for ProcessExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessExecutor {
    /// An executor with a 5 s stop grace period whose detached jobs keep
    /// their files under [`default_detached_dir`].
    pub fn new() -> Self {
        ProcessExecutor {
            grace: DEFAULT_GRACE,
            detached_dir: None,
            watcher: Arc::new(Watcher::new(DEFAULT_GRACE)),
            io: Mutex::new(None),
            session_io: false,
            auto_io: true,
            io_threads: DEFAULT_IO_THREADS,
            groups: Arc::default(),
        }
    }

    /// Gives the executor an I/O runtime of its own with this many threads
    /// (default 2, at least 1), even under a session that drives I/O. A
    /// host that does little else on its own runtime saves cross-thread
    /// wake-ups per job with 1; the pipes of many busy jobs are read in
    /// parallel with more.
    pub fn io_threads(mut self, threads: usize) -> Self {
        self.io_threads = threads.max(1);
        self.auto_io = false;
        self
    }

    /// Drives the jobs' process I/O (pipes, exits, timers) on the runtime
    /// the session runs them on, instead of a runtime of the executor's
    /// own. That runtime must have I/O and time enabled, as a session's own
    /// runtime has (`Session::new` outside a runtime) and a runtime built
    /// with `enable_all` has; [`io_threads`](Self::io_threads) is then unused.
    ///
    /// A job's exit then wakes the thread that finishes the job directly,
    /// not an I/O thread that wakes it in turn: a short job ends with about
    /// half the thread wake-ups. A job that writes a lot is read on the
    /// session's threads, next to whatever else they do.
    pub fn on_session_runtime(mut self) -> Self {
        self.session_io = true;
        self
    }

    /// Sets the time between SIGTERM and SIGKILL when a job is stopped (or
    /// when leftovers of a finished job are ended).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self.watcher = Arc::new(Watcher::new(grace));
        self
    }

    /// Sets the directory under which detached jobs keep their output and
    /// exit status, one subdirectory per job instance id. A session that
    /// should re-adopt detached jobs must use the same directory.
    pub fn detached_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.detached_dir = Some(dir.into());
        self
    }

    /// The stop grace period.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The directory of detached jobs' files.
    pub fn detached_root(&self) -> PathBuf {
        self.detached_dir
            .clone()
            .unwrap_or_else(default_detached_dir)
    }

    /// The directory of one detached job's files.
    pub fn detached_job_dir(&self, instance_id: &impl ToString) -> PathBuf {
        self.detached_root().join(instance_id.to_string())
    }

    /// What one job's run gets of this executor.
    fn lend(&self, ctx: &JobContext) -> Result<Lent, JobFailure> {
        Ok(Lent {
            grace: self.grace,
            watcher: Arc::clone(&self.watcher),
            io: self.io(ctx)?,
            groups: Arc::clone(&self.groups),
        })
    }

    /// The handle of the runtime a job's I/O goes to: the session's, or
    /// the executor's own, started on first use.
    fn io(&self, ctx: &JobContext) -> Result<Handle, JobFailure> {
        if self.session_io || (self.auto_io && ctx.runtime_drives_io()) {
            return Handle::try_current().map_err(|e| {
                JobFailure::new(format!("the session's runtime is not available: {e}"))
            });
        }
        let mut slot = self.io.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = slot.as_ref() {
            return Ok(rt.handle().clone());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.io_threads)
            .thread_name("jobs-process-io")
            .enable_all()
            .build()
            .map_err(|e| JobFailure::new(format!("cannot start the process I/O runtime: {e}")))?;
        let handle = rt.handle().clone();
        *slot = Some(rt);
        Ok(handle)
    }
}

impl Drop for ProcessExecutor {
    fn drop(&mut self) {
        let rt = self.io.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = rt.take() {
            // Dropping a runtime may block, which panics inside an async
            // context; a background shutdown never does.
            rt.shutdown_background();
        }
    }
}

/// The default directory of detached jobs' files: `detached` in the
/// session's state directory ([`jobs_core::state_dir`]), else under the
/// temp directory with the user id in its name.
pub fn default_detached_dir() -> PathBuf {
    match jobs_core::state_dir() {
        Some(s) => s.join("detached"),
        None => std::env::temp_dir().join(format!(
            "jobctl-{}/detached",
            nix::unistd::getuid().as_raw()
        )),
    }
}

#[async_trait]
impl JobExecutor for ProcessExecutor {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let mut pspec = match spec.payload.map(|p| p.downcast::<ProcessSpec>()) {
            Some(Ok(p)) => *p,
            Some(Err(_)) => {
                return Err(JobFailure::new(
                    "a process job's payload must be a jobs_process::ProcessSpec",
                ))
            }
            None => {
                ProcessSpec::from_params(&spec.params).map_err(|e| JobFailure::from_error(&e))?
            }
        };
        pspec.detached |= spec.detached;
        if pspec.detached {
            let dir = self.detached_job_dir(&ctx.instance_id());
            detached::run(self.lend(&ctx)?, pspec, dir, ctx).await
        } else {
            attached::run(self.lend(&ctx)?, pspec, ctx).await
        }
    }

    /// An attached job's first step is its spawn: taken on the starting
    /// thread, the process starts without a runtime thread waking first.
    fn starts_in_place(&self, spec: &JobSpec) -> bool {
        let detached = match spec
            .payload
            .as_ref()
            .map(|p| p.downcast_ref::<ProcessSpec>())
        {
            Some(Some(p)) => p.detached,
            _ => spec.params.get("detached").and_then(|v| v.as_bool()) == Some(true),
        };
        !(spec.detached || detached)
    }

    fn resumable(&self, info: &JobInfo) -> bool {
        info.detached && detached::adoptable(&self.detached_job_dir(&info.instance_id))
    }

    async fn resume(&self, info: JobInfo, ctx: JobContext) -> Result<(), JobFailure> {
        let dir = self.detached_job_dir(&info.instance_id);
        detached::resume(self.lend(&ctx)?, dir, ctx).await
    }

    /// SIGSTOP to the job's whole process group (attached or detached).
    fn can_suspend(&self) -> bool {
        true
    }

    async fn suspend(&self, ctx: &JobContext) -> Result<(), SuspendError> {
        self.groups.signal(ctx, Signal::SIGSTOP);
        Ok(())
    }

    /// SIGCONT to the job's whole process group.
    async fn resume_suspended(&self, ctx: &JobContext) -> Result<(), SuspendError> {
        self.groups.signal(ctx, Signal::SIGCONT);
        Ok(())
    }
}
