//! The library face: `Session::start_thread` and the typed `ThreadJob<T>`.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use jobs_core::{
    Error, JobFailure, JobId, JobInfo, JobSpec, JobState, Payload, ReceiveOptions, Session, Stream,
    WaitMode,
};

use crate::{ThreadContext, ThreadExecutor, ThreadWork, TYPE_NAME};

/// What a closure shows as its command in the job table.
pub const CLOSURE_COMMAND: &str = "{closure}";

/// Starts closures as thread jobs of a [`Session`].
///
/// If the session has no `ThreadJob` executor yet, a default
/// [`ThreadExecutor`] is registered on first use; register one yourself to
/// choose its grace period or throttle.
pub trait SessionThreadExt {
    /// Starts `f` on a thread of its own and returns its typed handle at
    /// once (the job may be queued NotStarted behind the throttle).
    fn start_thread<T, F>(&self, f: F) -> Result<ThreadJob<T>, Error>
    where
        T: Any + Send + Sync,
        F: FnOnce(&ThreadContext<T>) -> Result<(), JobFailure> + Send + 'static;

    /// As [`start_thread`](SessionThreadExt::start_thread), with a spec that
    /// sets the name, command, throttle or location (its payload is replaced,
    /// an empty type name becomes `ThreadJob`).
    fn start_thread_with<T, F>(&self, spec: JobSpec, f: F) -> Result<ThreadJob<T>, Error>
    where
        T: Any + Send + Sync,
        F: FnOnce(&ThreadContext<T>) -> Result<(), JobFailure> + Send + 'static;
}

impl SessionThreadExt for Session {
    fn start_thread<T, F>(&self, f: F) -> Result<ThreadJob<T>, Error>
    where
        T: Any + Send + Sync,
        F: FnOnce(&ThreadContext<T>) -> Result<(), JobFailure> + Send + 'static,
    {
        self.start_thread_with(JobSpec::new(TYPE_NAME, CLOSURE_COMMAND), f)
    }

    fn start_thread_with<T, F>(&self, mut spec: JobSpec, f: F) -> Result<ThreadJob<T>, Error>
    where
        T: Any + Send + Sync,
        F: FnOnce(&ThreadContext<T>) -> Result<(), JobFailure> + Send + 'static,
    {
        if spec.type_name.is_empty() {
            spec.type_name = TYPE_NAME.to_string();
        }
        if !self
            .executor_types()
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&spec.type_name))
            && spec.type_name.eq_ignore_ascii_case(TYPE_NAME)
        {
            self.register(Arc::new(ThreadExecutor::new()));
        }
        let work = ThreadWork::new(move |ctx| f(&ThreadContext::new(ctx)));
        spec.payload = Some(Box::new(work));
        let id = self.start(spec)?;
        Ok(ThreadJob::attach(self, id))
    }
}

/// A handle on a thread job whose output values are `T`: wait for it, stop
/// it, and receive its values as the very `Arc<T>`s the job emitted.
pub struct ThreadJob<T> {
    session: Session,
    id: JobId,
    _out: PhantomData<fn() -> T>,
}

impl<T> Clone for ThreadJob<T> {
    fn clone(&self) -> Self {
        ThreadJob {
            session: self.session.clone(),
            id: self.id,
            _out: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ThreadJob<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadJob").field("id", &self.id).finish()
    }
}

impl<T: Any + Send + Sync> ThreadJob<T> {
    /// A typed handle on a job of `session` started some other way (e.g. from
    /// a [`ThreadWork`] spec); receive skips output that is not a live `T`.
    pub fn attach(session: &Session, id: JobId) -> Self {
        ThreadJob {
            session: session.clone(),
            id,
            _out: PhantomData,
        }
    }

    /// The job's id in its session.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The session the job belongs to.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The job's current row.
    pub fn info(&self) -> Result<JobInfo, Error> {
        self.session.info(self.id)
    }

    /// The job's current state.
    pub fn state(&self) -> Result<JobState, Error> {
        Ok(self.info()?.state)
    }

    /// Waits until the job is finished; returns its final row.
    pub async fn wait(&self) -> Result<JobInfo, Error> {
        self.session.wait_finished(self.id).await
    }

    /// Blocking [`wait`](ThreadJob::wait); not for use inside async code.
    pub fn wait_blocking(&self) -> Result<JobInfo, Error> {
        self.session
            .wait_blocking(&[self.id], WaitMode::All, None)?;
        self.info()
    }

    /// Requests a stop and waits until the job is finished (at most the
    /// executor's grace period after the request).
    pub async fn stop(&self) -> Result<JobInfo, Error> {
        self.session.stop(self.id).await
    }

    /// Blocking [`stop`](ThreadJob::stop).
    pub fn stop_blocking(&self) -> Result<JobInfo, Error> {
        self.session.stop_blocking(self.id)
    }

    /// Takes the job's records out of its cache and returns its output
    /// values of type `T`, in order, each the very `Arc` the job emitted.
    /// Records of other streams and other payloads are consumed too; use
    /// [`Session::receive`] to see them.
    pub fn receive(&self) -> Result<Vec<Arc<T>>, Error> {
        self.receive_with(ReceiveOptions::default())
    }

    /// As [`receive`](ThreadJob::receive), leaving the records in the cache.
    pub fn receive_keep(&self) -> Result<Vec<Arc<T>>, Error> {
        self.receive_with(ReceiveOptions {
            keep: true,
            ..Default::default()
        })
    }

    fn receive_with(&self, opts: ReceiveOptions) -> Result<Vec<Arc<T>>, Error> {
        let records = self.session.receive(&[self.id], opts)?;
        Ok(records
            .into_iter()
            .filter(|r| r.record.stream == Stream::Output)
            .filter_map(|r| match r.record.payload {
                Payload::Live(live) => live.downcast::<T>(),
                _ => None,
            })
            .collect())
    }
}
