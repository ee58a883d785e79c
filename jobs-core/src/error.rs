//! The error type of the session's operations.

use crate::{JobId, JobState};

/// What went wrong, for callers that branch on it.
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
    /// The session is closed.
    Closed,
}

/// The error of a session operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No job has the given id.
    #[error("no job with id {0}")]
    NoSuchJob(JobId),
    /// The job is not finished, and the operation needs it to be.
    #[error("job {id} is {state}: stop it first, or use force")]
    NotFinished {
        /// The job.
        id: JobId,
        /// Its state.
        state: JobState,
    },
    /// A state change that the lifecycle does not allow.
    #[error("job {id} cannot go from {from} to {to}")]
    IllegalTransition {
        /// The job.
        id: JobId,
        /// Its state.
        from: JobState,
        /// The state asked for.
        to: JobState,
    },
    /// No executor is registered under the type name.
    #[error("unknown job type '{0}'")]
    UnknownType(String),
    /// A child job cannot be removed on its own.
    #[error("job {id} is a child of job {parent}: remove the parent")]
    ChildJob {
        /// The child.
        id: JobId,
        /// Its parent.
        parent: JobId,
    },
    /// Input that cannot be used.
    #[error("{0}")]
    InvalidInput(String),
    /// The storage behind the session failed.
    #[error("job store: {0}")]
    Store(#[from] StoreError),
    /// The session is closed.
    #[error("the session is closed")]
    Closed,
}

impl Error {
    /// The kind of error, to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoSuchJob(_) => ErrorKind::NoSuchJob,
            Error::NotFinished { .. } => ErrorKind::NotFinished,
            Error::IllegalTransition { .. } => ErrorKind::IllegalTransition,
            Error::UnknownType(_) => ErrorKind::UnknownType,
            Error::ChildJob { .. } => ErrorKind::ChildJob,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Store(_) => ErrorKind::Store,
            Error::Closed => ErrorKind::Closed,
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
