//! The `JobExecutor` trait: the only thing an executor implements.

use async_trait::async_trait;

use crate::{JobContext, JobFailure, JobInfo, JobSpec, SuspendError};

/// Runs jobs somewhere. The session owns everything else.
///
/// # Contract
/// - [`run`](JobExecutor::run) is called once per job, on the session's
///   tokio runtime, when the job leaves the queue (its first step may be
///   taken on the starting thread, inside the runtime's context, by an
///   executor that [opts in](JobExecutor::starts_in_place)). It returns when the work
///   is over: `Ok(())` makes the job Completed, `Err(failure)` Failed with
///   the failure's reason; either, once a stop was requested, makes it
///   Stopped (an `Err` then gives the Stopped job its reason).
/// - A stop request is seen through [`JobContext::stop_requested`] and
///   [`JobContext::stopped`]; the executor must then end the work and
///   return promptly. It may return before the work is gone only if it says
///   so in the failure's reason (e.g. a thread that was abandoned).
/// - `run` must not block the runtime's threads: blocking work belongs on
///   threads of the executor's own (or `spawn_blocking`).
/// - Records emitted after `run` returned are dropped.
/// - A panic in `run` fails that job only, with the panic message as reason.
/// - Suspend and resume are optional ([`can_suspend`](JobExecutor::can_suspend)).
///   The session owns the states (Suspending, Suspended, Running again)
///   and sets the job's pause ([`StopToken::is_paused`](crate::StopToken::is_paused))
///   before it calls [`suspend`](JobExecutor::suspend), and lifts it
///   before [`resume_suspended`](JobExecutor::resume_suspended). Work that
///   pauses cooperatively (a script between operations) needs nothing
///   more; work elsewhere (a process group, a remote group) is paused by
///   these two calls. A stop of a suspended job lifts the pause, then
///   triggers the stop as for a running job: `run` must still end.
#[async_trait]
pub trait JobExecutor: Send + Sync + 'static {
    /// The type name shown in `PSJobTypeName` (`BackgroundJob`, ...).
    fn type_name(&self) -> &str;

    /// Runs one job to its end.
    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure>;

    /// Where a job of this spec runs, when the spec does not say.
    fn location(&self, _spec: &JobSpec) -> String {
        "localhost".to_string()
    }

    /// Whether this executor says itself when a job really starts: the job
    /// then stays NotStarted after `run` begins (queued elsewhere, e.g. in a
    /// cluster scheduler) until the executor calls
    /// [`JobContext::set_running`]. Default: the job is Running at once.
    fn reports_start(&self) -> bool {
        false
    }

    /// Whether `run`'s first step for `spec` (up to its first `.await`
    /// that waits) is short and never blocks, so that a job started from a
    /// thread outside any runtime may take it there, in the runtime's
    /// context; the rest goes to the runtime when something wakes it. A
    /// process executor's first step is the spawn: taken in place, the
    /// process starts without a runtime thread waking to start it.
    /// Default: no, `run` begins on the runtime.
    fn starts_in_place(&self, _spec: &JobSpec) -> bool {
        false
    }

    /// The default throttle limit of this type (none: unlimited).
    fn default_throttle(&self) -> Option<usize> {
        None
    }

    /// Whether this executor can take over a job that was running when a
    /// previous session ended (a detached process, a cluster job).
    fn resumable(&self, _info: &JobInfo) -> bool {
        false
    }

    /// Takes over a job of a previous session, as `run` would have gone on.
    async fn resume(&self, _info: JobInfo, _ctx: JobContext) -> Result<(), JobFailure> {
        Err(JobFailure::new("this job type cannot be resumed"))
    }

    /// Whether this executor can suspend and resume its jobs. The session
    /// asks before it changes anything, and refuses a suspend of a type
    /// that cannot with [`ErrorKind::CannotSuspend`](crate::ErrorKind::CannotSuspend).
    fn can_suspend(&self) -> bool {
        false
    }

    /// Pauses a running job's work (`ctx` is the job's context, as `run`
    /// has it); returns once it is paused. Default: unsupported.
    async fn suspend(&self, _ctx: &JobContext) -> Result<(), SuspendError> {
        Err(SuspendError::unsupported(self.type_name()))
    }

    /// Lets a suspended job's work go on. Default: unsupported.
    async fn resume_suspended(&self, _ctx: &JobContext) -> Result<(), SuspendError> {
        Err(SuspendError::unsupported(self.type_name()))
    }
}
