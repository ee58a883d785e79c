//! `JobSpec`: what to run, as the session and every executor see it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{JobFailure, JobId};

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
    /// Where the job runs; the executor's [`JobExecutor::location`](crate::JobExecutor::location) if none.
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
    /// The input item a batch's child runs for (shown in `JobInfo::item`).
    pub item: Option<String>,
    /// How many more times the job runs if it fails (each new attempt is
    /// announced by an information record `attempt K of M`). A job with an
    /// in-process payload runs once: the payload cannot be run again.
    pub retries: u32,
    /// How long to wait before each new attempt (none: start it at once).
    /// The job stays Running meanwhile; a stop during the wait ends the
    /// retries at once and the job ends Stopped.
    pub retry_delay: Option<std::time::Duration>,
    /// The job this one restarts (shown in [`JobInfo::restarted_from`](crate::JobInfo::restarted_from)).
    pub restarted_from: Option<JobId>,
    /// How long the job may run (each attempt, from when it starts
    /// running, not while it waits). When it passes, the session stops the
    /// job (as a user's stop does, killing its tree) and the job ends Failed
    /// with the reason `timed out after 90s` ([`timeout_shown`](field@JobSpec::timeout_shown),
    /// else the duration normalized by [`format_duration`](crate::format_duration));
    /// with retries left, it is a failure as any other. See [`JobSpec::timeout`].
    pub timeout: Option<std::time::Duration>,
    /// How the time limit is shown in the reason, as its user wrote it
    /// (`90s` for `--timeout 90`, `1h30m`); none: normalized.
    pub timeout_shown: Option<String>,
    /// Jobs that must all end Completed before this one starts; if one
    /// ends Failed or Stopped, or is removed, this job ends Failed without
    /// running. See [`JobSpec::after`].
    pub after: Vec<JobId>,
    /// Jobs that must all be finished, whatever their outcome, before this
    /// one starts. See [`JobSpec::after_any`].
    pub after_any: Vec<JobId>,
    /// Builds the spec the executor runs when the job launches: a queued
    /// job then holds only what `list` shows and this maker (a batch of
    /// 100,000 items does not hold 100,000 specs). Everything else of the
    /// spec is taken when the job starts (its row, retries, time limit), so
    /// the spec it is given at launch has only `make` set. An error fails
    /// the job with its reason, without running it.
    pub make: Option<SpecMaker>,
}

/// See [`JobSpec::make`].
pub type SpecMaker = Arc<dyn Fn(&JobSpec) -> Result<JobSpec, JobFailure> + Send + Sync>;

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
            item: None,
            retries: 0,
            retry_delay: None,
            restarted_from: None,
            timeout: None,
            timeout_shown: None,
            after: Vec::new(),
            after_any: Vec::new(),
            make: None,
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

    /// Makes the job wait, NotStarted, until every job of `ids` ended
    /// Completed; then it queues behind its throttle as any job. If one of
    /// them ends Failed or Stopped, or is removed, the job never runs: it
    /// ends Failed with the reason `dependency 3 (build) failed` (or `was
    /// stopped`, `was removed`). The ids must be jobs of the session when the
    /// job starts, so no cycle can form. May be called more than once.
    ///
    /// ```
    /// use jobs_core::{JobSpec, Session};
    /// # use jobs_core::{JobContext, JobExecutor, JobFailure};
    /// # struct Echo;
    /// # #[jobs_core::async_trait]
    /// # impl JobExecutor for Echo {
    /// #     fn type_name(&self) -> &str { "Echo" }
    /// #     async fn run(&self, _s: JobSpec, _c: JobContext) -> Result<(), JobFailure> { Ok(()) }
    /// # }
    /// let session = Session::new()?;
    /// session.register(std::sync::Arc::new(Echo));
    /// let build = session.start(JobSpec::new("Echo", "build").name("build"))?;
    /// let test = session.start(JobSpec::new("Echo", "test").after([build]))?;
    /// session.wait_blocking(&[test], jobs_core::WaitMode::All, None)?;
    /// assert_eq!(session.info(test)?.state, jobs_core::JobState::Completed);
    /// # Ok::<(), jobs_core::Error>(())
    /// ```
    pub fn after(mut self, ids: impl IntoIterator<Item = JobId>) -> Self {
        self.after.extend(ids);
        self
    }

    /// Makes the job wait, NotStarted, until every job of `ids` is finished
    /// (Completed, Failed or Stopped, or removed), whatever the outcome.
    /// May be combined with [`after`](JobSpec::after).
    pub fn after_any(mut self, ids: impl IntoIterator<Item = JobId>) -> Self {
        self.after_any.extend(ids);
        self
    }

    /// Limits how long the job runs: see [`JobSpec::timeout`](field@JobSpec::timeout).
    pub fn timeout(mut self, limit: std::time::Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Whether the job waits for other jobs.
    pub fn has_dependencies(&self) -> bool {
        !self.after.is_empty() || !self.after_any.is_empty()
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
            .field("item", &self.item)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("restarted_from", &self.restarted_from)
            .field("timeout", &self.timeout)
            .field("timeout_shown", &self.timeout_shown)
            .field("make", &self.make.as_ref().map(|_| "…"))
            .field("after", &self.after)
            .field("after_any", &self.after_any)
            .finish()
    }
}

impl JobSpec {
    /// A copy for another attempt: everything but the in-process payload.
    pub(crate) fn rerun(&self) -> JobSpec {
        JobSpec {
            type_name: self.type_name.clone(),
            name: self.name.clone(),
            command: self.command.clone(),
            params: self.params.clone(),
            payload: None,
            location: self.location.clone(),
            throttle: self.throttle,
            child_throttle: self.child_throttle,
            detached: self.detached,
            instance_id: self.instance_id,
            item: self.item.clone(),
            retries: self.retries,
            retry_delay: self.retry_delay,
            restarted_from: self.restarted_from,
            timeout: self.timeout,
            timeout_shown: self.timeout_shown.clone(),
            after: self.after.clone(),
            after_any: self.after_any.clone(),
            make: self.make.clone(),
        }
    }

    /// The spec the executor runs: [`make`](Self::make)'s, or this one.
    pub(crate) fn made(self) -> Result<JobSpec, JobFailure> {
        match self.make.clone() {
            Some(make) => make(&self),
            None => Ok(self),
        }
    }

    /// The spec as bytes a store keeps for a job that waits, so that a
    /// restored session can start it; `None` with an in-process payload,
    /// which cannot be kept.
    pub(crate) fn to_stored(&self) -> Option<Vec<u8>> {
        if self.payload.is_some() || self.make.is_some() {
            return None;
        }
        let stored = StoredSpec {
            type_name: self.type_name.clone(),
            name: self.name.clone(),
            command: self.command.clone(),
            params: self.params.clone(),
            location: self.location.clone(),
            throttle: self.throttle,
            child_throttle: self.child_throttle,
            detached: self.detached,
            instance_id: self.instance_id,
            item: self.item.clone(),
            retries: self.retries,
            retry_delay: self.retry_delay,
            restarted_from: self.restarted_from,
            timeout: self.timeout,
            timeout_shown: self.timeout_shown.clone(),
            after: self.after.clone(),
            after_any: self.after_any.clone(),
        };
        serde_json::to_vec(&stored).ok()
    }

    /// A spec read back from [`to_stored`](JobSpec::to_stored)'s bytes.
    pub(crate) fn from_stored(bytes: &[u8]) -> Result<JobSpec, serde_json::Error> {
        let s: StoredSpec = serde_json::from_slice(bytes)?;
        Ok(JobSpec {
            type_name: s.type_name,
            name: s.name,
            command: s.command,
            params: s.params,
            payload: None,
            location: s.location,
            throttle: s.throttle,
            child_throttle: s.child_throttle,
            detached: s.detached,
            instance_id: s.instance_id,
            item: s.item,
            retries: s.retries,
            retry_delay: s.retry_delay,
            restarted_from: s.restarted_from,
            timeout: s.timeout,
            timeout_shown: s.timeout_shown,
            after: s.after,
            after_any: s.after_any,
            make: None,
        })
    }
}

/// A spec without its payload, as a store keeps it for a waiting job.
#[derive(Serialize, Deserialize)]
struct StoredSpec {
    type_name: String,
    name: Option<String>,
    command: String,
    params: serde_json::Value,
    location: Option<String>,
    throttle: Option<usize>,
    child_throttle: Option<usize>,
    detached: bool,
    instance_id: Option<uuid::Uuid>,
    item: Option<String>,
    retries: u32,
    #[serde(default)]
    retry_delay: Option<std::time::Duration>,
    #[serde(default)]
    restarted_from: Option<JobId>,
    #[serde(default)]
    timeout: Option<std::time::Duration>,
    #[serde(default)]
    timeout_shown: Option<String>,
    #[serde(default)]
    after: Vec<JobId>,
    #[serde(default)]
    after_any: Vec<JobId>,
}
