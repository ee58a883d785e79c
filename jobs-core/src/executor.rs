//! The `JobExecutor` trait: the only thing an executor implements.

use std::any::Any;
use std::fmt;

use async_trait::async_trait;

use crate::{JobContext, JobInfo};

/// Why a job failed: the reason shown to the user, and an exit code if the
/// work had one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    /// The reason, one line, shown as the job's `reason`.
    pub reason: String,
    /// The exit code, where there is one.
    pub exit_code: Option<i32>,
}

impl JobFailure {
    /// A failure with a reason and no exit code.
    pub fn new(reason: impl Into<String>) -> Self {
        JobFailure {
            reason: reason.into(),
            exit_code: None,
        }
    }

    /// A failure whose reason is an error and its causes on one line
    /// (`what failed: why: why`).
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        JobFailure::new(crate::error::chain(error))
    }

    /// A process that exited with a non-zero status: `exited with status 3`,
    /// with that exit code.
    pub fn exited(code: i32) -> Self {
        JobFailure::with_exit_code(format!("exited with status {code}"), code)
    }

    /// A process killed by a signal: `killed by signal 9 (SIGKILL)`, or
    /// without the name for a signal this platform does not know.
    pub fn signaled(sig: i32) -> Self {
        JobFailure::new(match crate::signal::signal_name(sig) {
            Some(name) => format!("killed by signal {sig} ({name})"),
            None => format!("killed by signal {sig}"),
        })
    }

    /// Work that panicked, from the panic's payload: `panicked: MESSAGE`.
    pub fn panicked(payload: &(dyn Any + Send)) -> Self {
        JobFailure::new(format!("panicked: {}", panic_message(payload)))
    }

    /// The same failure with a detail after its reason (`REASON: DETAIL`),
    /// such as the last line a process wrote to stderr.
    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.reason = format!("{}: {detail}", self.reason);
        self
    }

    /// A failure with a reason and an exit code.
    pub fn with_exit_code(reason: impl Into<String>, code: i32) -> Self {
        JobFailure {
            reason: reason.into(),
            exit_code: Some(code),
        }
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl From<String> for JobFailure {
    fn from(reason: String) -> Self {
        JobFailure::new(reason)
    }
}

impl From<&str> for JobFailure {
    fn from(reason: &str) -> Self {
        JobFailure::new(reason)
    }
}

/// What to run: the executor's type, how the user wrote the command, the
/// executor's own parameters, and the job's options.
///
/// `params` is the executor's serializable description of the work (a
/// program and its arguments, a script, hosts); it is what crosses a plugin
/// boundary. `payload` carries what cannot be serialized (a closure for a
/// thread job) and only works in-process.
pub struct JobSpec {
    /// The executor type that runs the job (empty for a child: the parent's).
    pub type_name: String,
    /// The job's name; `Job<id>` if none.
    pub name: Option<String>,
    /// The command as the user wrote it (shown in `list`).
    pub command: String,
    /// The executor's own parameters.
    pub params: serde_json::Value,
    /// An in-process payload the executor takes (e.g. a closure).
    pub payload: Option<Box<dyn Any + Send>>,
    /// Where the job runs; the executor's [`JobExecutor::location`] if none.
    pub location: Option<String>,
    /// Sets the throttle limit of the job's type (as PowerShell's
    /// `-ThrottleLimit` does) before the job is queued.
    pub throttle: Option<usize>,
    /// How many of this job's children may run at once (none: no limit).
    pub child_throttle: Option<usize>,
    /// Whether the job outlives its session.
    pub detached: bool,
    /// The instance id the job takes (default: a fresh one). For a job that
    /// stands for another session's job, as a plugin's does for its host's.
    pub instance_id: Option<uuid::Uuid>,
}

impl JobSpec {
    /// A spec for the executor `type_name` with the command as shown.
    pub fn new(type_name: impl Into<String>, command: impl Into<String>) -> Self {
        JobSpec {
            type_name: type_name.into(),
            name: None,
            command: command.into(),
            params: serde_json::Value::Null,
            payload: None,
            location: None,
            throttle: None,
            child_throttle: None,
            detached: false,
            instance_id: None,
        }
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the executor's parameters.
    pub fn params(mut self, params: serde_json::Value) -> Self {
        self.params = params;
        self
    }

    /// Sets the in-process payload.
    pub fn payload(mut self, payload: Box<dyn Any + Send>) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets the location.
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// Sets the type's throttle limit.
    pub fn throttle(mut self, limit: usize) -> Self {
        self.throttle = Some(limit);
        self
    }

    /// Sets the limit on concurrently running children.
    pub fn child_throttle(mut self, limit: usize) -> Self {
        self.child_throttle = Some(limit);
        self
    }

    /// Marks the job detached.
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// Gives the job this instance id rather than a fresh one.
    pub fn instance_id(mut self, id: uuid::Uuid) -> Self {
        self.instance_id = Some(id);
        self
    }
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSpec")
            .field("type_name", &self.type_name)
            .field("name", &self.name)
            .field("command", &self.command)
            .field("params", &self.params)
            .field("payload", &self.payload.as_ref().map(|_| "…"))
            .field("location", &self.location)
            .field("detached", &self.detached)
            .field("instance_id", &self.instance_id)
            .finish()
    }
}

/// Runs jobs somewhere. The session owns everything else.
///
/// # Contract
/// - [`run`](JobExecutor::run) is called once per job, on the session's
///   tokio runtime, when the job leaves the queue. It returns when the work
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
}

/// The message of a panic's payload (`panic!("...")` gives a `&str` or a
/// `String`), for reasons such as `panicked: MESSAGE`.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::JobFailure;

    #[test]
    fn reasons_are_spelled_one_way() {
        let exited = JobFailure::exited(3);
        assert_eq!(
            (exited.reason.as_str(), exited.exit_code),
            ("exited with status 3", Some(3))
        );
        assert_eq!(
            JobFailure::signaled(9).reason,
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            JobFailure::signaled(15).reason,
            "killed by signal 15 (SIGTERM)"
        );
        assert_eq!(JobFailure::signaled(1000).reason, "killed by signal 1000");
        assert_eq!(JobFailure::panicked(&"boom").reason, "panicked: boom");
        assert_eq!(
            JobFailure::exited(2).with_detail("no such file").reason,
            "exited with status 2: no such file"
        );
    }
}
