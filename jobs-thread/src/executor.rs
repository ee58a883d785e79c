//! `ThreadExecutor`: runs a job's closure on an OS thread of its own and
//! waits for it, or abandons it when it ignores a stop for too long.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{async_trait, JobContext, JobExecutor, JobFailure, JobSpec, SuspendError};
use tokio::sync::oneshot;

use crate::pool::Pool;

/// The type name of thread jobs, as `PSJobTypeName` shows it.
pub const TYPE_NAME: &str = "ThreadJob";

/// How many thread jobs run at once unless the session says otherwise
/// (PowerShell's `Start-ThreadJob` default).
pub const DEFAULT_THROTTLE: usize = 5;

/// How long a stopped job may take to return before it is abandoned.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

type Work = Box<dyn FnOnce(JobContext) -> Result<(), JobFailure> + Send + 'static>;

/// The work of one thread job: a closure that gets the job's context by
/// value and runs on a thread of its own. It travels in [`JobSpec::payload`].
pub struct ThreadWork(Work);

impl ThreadWork {
    /// Wraps a closure.
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce(JobContext) -> Result<(), JobFailure> + Send + 'static,
    {
        ThreadWork(Box::new(f))
    }

    /// A spec for a thread job running this work, with `command` as shown in
    /// the job table.
    pub fn into_spec(self, command: impl Into<String>) -> JobSpec {
        JobSpec::new(TYPE_NAME, command).payload(Box::new(self))
    }
}

impl fmt::Debug for ThreadWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThreadWork(..)")
    }
}

/// Runs [`ThreadWork`] closures on OS threads (never on the async runtime's
/// workers), one thread per running job. A thread that finished a job waits
/// a few seconds for the next one before it ends, so a burst of short jobs
/// does not pay for a new thread each (thread-local state may therefore
/// outlive a job).
///
/// - Throttle: [`DEFAULT_THROTTLE`] unless set otherwise (the session queues
///   the rest, NotStarted, first in first out).
/// - A panic fails that job only; its reason is `panicked: ` and the message.
/// - Stop is cooperative: the closure sees the request through its context.
///   A job that has not returned within the grace period after a stop is
///   abandoned: it ends Stopped with a reason that says so, its throttle slot
///   is freed and whatever it emits later is dropped. Its thread runs on
///   until the closure returns (a thread cannot be killed safely).
#[derive(Clone)]
pub struct ThreadExecutor {
    grace: Duration,
    throttle: usize,
    pool: Arc<Pool>,
}

impl Default for ThreadExecutor {
    fn default() -> Self {
        ThreadExecutor {
            grace: DEFAULT_GRACE,
            throttle: DEFAULT_THROTTLE,
            pool: Arc::new(Pool::default()),
        }
    }
}

impl fmt::Debug for ThreadExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadExecutor")
            .field("grace", &self.grace)
            .field("throttle", &self.throttle)
            .finish()
    }
}

impl ThreadExecutor {
    /// An executor with the default throttle and grace period.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long a stopped job may take before it is abandoned.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets the default throttle limit (at least 1) the session applies to
    /// thread jobs unless it has one of its own.
    pub fn with_throttle(mut self, limit: usize) -> Self {
        self.throttle = limit.max(1);
        self
    }

    /// The grace period after a stop.
    pub fn grace(&self) -> Duration {
        self.grace
    }
}

/// The reason given to a job abandoned after `grace`.
pub(crate) fn abandoned_reason(grace: Duration) -> String {
    let shown = if grace.subsec_nanos() == 0 {
        format!("{}s", grace.as_secs())
    } else {
        format!("{}ms", grace.as_millis())
    };
    format!("abandoned: did not stop within {shown}")
}

type Outcome = Result<Result<(), JobFailure>, Box<dyn Any + Send>>;

fn settle(outcome: Result<Outcome, oneshot::error::RecvError>) -> Result<(), JobFailure> {
    match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(JobFailure::panicked(panic.as_ref())),
        Err(_) => Err(JobFailure::new("the job's thread ended without a result")),
    }
}

#[async_trait]
impl JobExecutor for ThreadExecutor {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }

    fn default_throttle(&self) -> Option<usize> {
        Some(self.throttle)
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let work = match spec.payload.map(|p| p.downcast::<ThreadWork>()) {
            Some(Ok(work)) => work.0,
            Some(Err(_)) => {
                return Err(JobFailure::new(
                    "a thread job's payload must be a jobs_thread::ThreadWork",
                ))
            }
            None => return Err(JobFailure::new("a thread job needs a closure to run")),
        };
        let stop = ctx.stop_token();
        let (tx, mut rx) = oneshot::channel::<Outcome>();
        self.pool
            .execute(Box::new(move || {
                let outcome = catch_unwind(AssertUnwindSafe(move || work(ctx)));
                // The receiver is gone only if the job was abandoned.
                let _ = tx.send(outcome);
            }))
            .map_err(|e| JobFailure::new(format!("cannot start a thread: {e}")))?;
        tokio::select! {
            outcome = &mut rx => return settle(outcome),
            _ = stop.stopped() => {}
        }
        match tokio::time::timeout(self.grace, &mut rx).await {
            Ok(outcome) => settle(outcome),
            Err(_) => Err(JobFailure::new(abandoned_reason(self.grace))),
        }
    }

    /// Thread jobs pause cooperatively: a script between two operations
    /// (and in `sleep`), a closure at its next pause point: its stop
    /// token's `pause_point` or `sleep_running`, or `check_stop`, `sleep`
    /// or `pause_point` of a [`ThreadContext`](crate::ThreadContext). A
    /// closure with none goes on running while the job shows Suspended.
    fn can_suspend(&self) -> bool {
        true
    }

    async fn suspend(&self, _ctx: &JobContext) -> Result<(), SuspendError> {
        // The session set the job's pause; the work sees it itself.
        Ok(())
    }

    async fn resume_suspended(&self, _ctx: &JobContext) -> Result<(), SuspendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandoned_reason_names_the_grace() {
        assert_eq!(
            abandoned_reason(Duration::from_secs(5)),
            "abandoned: did not stop within 5s"
        );
        assert_eq!(
            abandoned_reason(Duration::from_millis(250)),
            "abandoned: did not stop within 250ms"
        );
    }

    #[test]
    fn panic_reason_reads_str_and_string() {
        let reason = |p: Box<dyn Any + Send>| JobFailure::panicked(p.as_ref()).reason;
        assert_eq!(reason(Box::new("boom")), "panicked: boom");
        assert_eq!(reason(Box::new(String::from("bang"))), "panicked: bang");
        assert_eq!(reason(Box::new(7u8)), "panicked: a panic without a message");
    }
}
