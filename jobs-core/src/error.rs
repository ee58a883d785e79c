//! The error type of the session's operations.

use crate::{JobId, JobState};

/// What went wrong, for callers that branch on it: the one thing to match
/// on of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No job has the given id.
    NoSuchJob,
    /// The job is not finished (remove without force).
    NotFinished,
    /// A state change that the lifecycle does not allow.
    IllegalTransition,
    /// No executor is registered under the type name.
    UnknownType,
    /// A child job cannot be removed on its own.
    ChildJob,
    /// A filter or spec that cannot be used (bad glob, zero throttle, ...).
    InvalidInput,
    /// The storage behind the session failed.
    Store,
    /// The session could not start a runtime of its own.
    Runtime,
    /// The session is closed.
    Closed,
    /// The job's type cannot suspend, or its executor failed to.
    CannotSuspend,
    /// The job is in a state the operation does not apply to (a suspend
    /// of a finished job, a resume of a running one).
    WrongState,
}

/// The error of a session operation: branch on [`Error::kind`], read the
/// details a kind has through the accessors; `Display` says what failed
/// and [`source`](std::error::Error::source) holds the cause, if any.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Repr);

#[derive(Debug, thiserror::Error)]
enum Repr {
    #[error("no job with id {0}")]
    NoSuchJob(JobId),
    #[error("job {id} is {state}: stop it first, or use force")]
    NotFinished { id: JobId, state: JobState },
    #[error("job {id} cannot go from {from} to {to}")]
    IllegalTransition {
        id: JobId,
        from: JobState,
        to: JobState,
    },
    #[error("unknown job type '{0}'")]
    UnknownType(String),
    #[error("job {id} is a child of job {parent}: remove the parent")]
    ChildJob { id: JobId, parent: JobId },
    #[error("{0}")]
    InvalidInput(String),
    #[error("the job store failed")]
    Store(#[source] StoreError),
    #[error("cannot start the session's runtime")]
    Runtime(#[source] std::io::Error),
    #[error("the session is closed")]
    Closed,
    #[error("cannot suspend job {id}")]
    CannotSuspend {
        id: JobId,
        #[source]
        source: SuspendError,
    },
    #[error("job {id} is {state}: {what}")]
    WrongState {
        id: JobId,
        state: JobState,
        what: &'static str,
    },
}

impl Error {
    pub(crate) fn no_such_job(id: JobId) -> Self {
        Error(Repr::NoSuchJob(id))
    }

    pub(crate) fn not_finished(id: JobId, state: JobState) -> Self {
        Error(Repr::NotFinished { id, state })
    }

    pub(crate) fn illegal_transition(id: JobId, from: JobState, to: JobState) -> Self {
        Error(Repr::IllegalTransition { id, from, to })
    }

    pub(crate) fn unknown_type(type_name: impl Into<String>) -> Self {
        Error(Repr::UnknownType(type_name.into()))
    }

    pub(crate) fn child_job(id: JobId, parent: JobId) -> Self {
        Error(Repr::ChildJob { id, parent })
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Error(Repr::InvalidInput(message.into()))
    }

    pub(crate) fn runtime(source: std::io::Error) -> Self {
        Error(Repr::Runtime(source))
    }

    pub(crate) fn closed() -> Self {
        Error(Repr::Closed)
    }

    pub(crate) fn cannot_suspend(id: JobId, source: SuspendError) -> Self {
        Error(Repr::CannotSuspend { id, source })
    }

    pub(crate) fn wrong_state(id: JobId, state: JobState, what: &'static str) -> Self {
        Error(Repr::WrongState { id, state, what })
    }

    /// The kind of error, to branch on.
    pub fn kind(&self) -> ErrorKind {
        match &self.0 {
            Repr::NoSuchJob(_) => ErrorKind::NoSuchJob,
            Repr::NotFinished { .. } => ErrorKind::NotFinished,
            Repr::IllegalTransition { .. } => ErrorKind::IllegalTransition,
            Repr::UnknownType(_) => ErrorKind::UnknownType,
            Repr::ChildJob { .. } => ErrorKind::ChildJob,
            Repr::InvalidInput(_) => ErrorKind::InvalidInput,
            Repr::Store(_) => ErrorKind::Store,
            Repr::Runtime(_) => ErrorKind::Runtime,
            Repr::Closed => ErrorKind::Closed,
            Repr::CannotSuspend { .. } => ErrorKind::CannotSuspend,
            Repr::WrongState { .. } => ErrorKind::WrongState,
        }
    }

    /// The job the error is about ([`NoSuchJob`](ErrorKind::NoSuchJob),
    /// [`NotFinished`](ErrorKind::NotFinished),
    /// [`IllegalTransition`](ErrorKind::IllegalTransition),
    /// [`ChildJob`](ErrorKind::ChildJob)).
    pub fn job(&self) -> Option<JobId> {
        match &self.0 {
            Repr::NoSuchJob(id)
            | Repr::NotFinished { id, .. }
            | Repr::IllegalTransition { id, .. }
            | Repr::ChildJob { id, .. }
            | Repr::CannotSuspend { id, .. }
            | Repr::WrongState { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The job's state when the operation was refused
    /// ([`NotFinished`](ErrorKind::NotFinished),
    /// [`WrongState`](ErrorKind::WrongState), and the state it was in for
    /// [`IllegalTransition`](ErrorKind::IllegalTransition)).
    pub fn state(&self) -> Option<JobState> {
        match &self.0 {
            Repr::NotFinished { state, .. } => Some(*state),
            Repr::IllegalTransition { from, .. } => Some(*from),
            Repr::WrongState { state, .. } => Some(*state),
            _ => None,
        }
    }

    /// The parent of a child job that cannot be removed on its own
    /// ([`ChildJob`](ErrorKind::ChildJob)).
    pub fn parent(&self) -> Option<JobId> {
        match &self.0 {
            Repr::ChildJob { parent, .. } => Some(*parent),
            _ => None,
        }
    }

    /// The type name no executor is registered under
    /// ([`UnknownType`](ErrorKind::UnknownType)).
    pub fn type_name(&self) -> Option<&str> {
        match &self.0 {
            Repr::UnknownType(name) => Some(name),
            _ => None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error(Repr::Store(e))
    }
}

/// Why an executor did not suspend or resume a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SuspendError {
    /// Jobs of this type cannot be suspended.
    #[error("jobs of type {type_name} cannot be suspended")]
    Unsupported {
        /// The executor's type name.
        type_name: String,
    },
    /// The executor tried and failed.
    #[error("{0}")]
    Failed(String),
}

impl SuspendError {
    /// The refusal of a type that cannot suspend.
    pub fn unsupported(type_name: impl Into<String>) -> Self {
        SuspendError::Unsupported {
            type_name: type_name.into(),
        }
    }
}

/// An error from a [`Store`](crate::Store) implementation.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A store error with a message and the underlying cause.
    pub fn new(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A store error with a message only.
    pub fn msg(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            source: None,
        }
    }
}

/// An error and its causes on one line, `what failed: why: why`, as a
/// program's edge renders them (anyhow's `{:#}`).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chained_error_names_each_cause_once() {
        let disk = std::io::Error::other("disk full");
        let e = Error::from(StoreError::new("cannot save job 3", disk));
        assert_eq!(e.kind(), ErrorKind::Store);
        let line = chain(&e);
        assert_eq!(line, "the job store failed: cannot save job 3: disk full");
        for part in ["job store", "cannot save job 3", "disk full"] {
            assert_eq!(line.matches(part).count(), 1, "{line}");
        }
    }

    #[test]
    fn details_are_read_through_accessors() {
        let e = Error::not_finished(7, JobState::Running);
        assert_eq!(e.kind(), ErrorKind::NotFinished);
        assert_eq!((e.job(), e.state()), (Some(7), Some(JobState::Running)));
        assert_eq!(
            e.to_string(),
            "job 7 is Running: stop it first, or use force"
        );
        assert!(std::error::Error::source(&e).is_none());
    }
}
