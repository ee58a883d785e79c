//! `ThreadContext<T>`: what a thread job's closure sees: typed live output,
//! the other streams, and the stop request.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobContext, JobFailure, JobId, Record, StopToken};

/// A stop was requested; returned by [`ThreadContext::sleep`] and
/// [`ThreadContext::check_stop`] so a closure can end with `?`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stopped")
    }
}

impl std::error::Error for Stopped {}

impl From<Stopped> for JobFailure {
    fn from(_: Stopped) -> Self {
        // The session marks a job that returns after a stop request Stopped
        // whatever it returns; this only becomes the Stopped job's reason.
        JobFailure::new("stopped on request")
    }
}

/// A thread job's handle on itself, for a closure whose output values are
/// of type `T`: emit live values (handed back by reference), write the other
/// streams, and see stop requests.
pub struct ThreadContext<T> {
    ctx: JobContext,
    _out: PhantomData<fn(T)>,
}

impl<T: Any + Send + Sync> ThreadContext<T> {
    pub(crate) fn new(ctx: JobContext) -> Self {
        ThreadContext {
            ctx,
            _out: PhantomData,
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.ctx.id()
    }

    /// Emits an output value; receive hands back this very allocation.
    /// Returns `false` if the record was dropped (the job already ended).
    pub fn output(&self, value: T) -> bool {
        self.ctx.output_live(Arc::new(value))
    }

    /// Emits an `Arc` the caller already holds; receive hands back a clone
    /// of it (`Arc::ptr_eq` holds). Returns `false` if it was dropped.
    pub fn output_live(&self, value: Arc<T>) -> bool {
        self.ctx.output_live(value)
    }

    /// Emits an output record of text.
    pub fn output_text(&self, text: impl Into<String>) -> bool {
        self.ctx.output(text)
    }

    /// Emits any record.
    pub fn emit(&self, record: Record) -> bool {
        self.ctx.emit(record)
    }

    /// Emits a non-terminating error record.
    pub fn error(&self, text: impl Into<String>) -> bool {
        self.ctx.error(text)
    }

    /// Emits a warning.
    pub fn warning(&self, text: impl Into<String>) -> bool {
        self.ctx.warning(text)
    }

    /// Emits a verbose message.
    pub fn verbose(&self, text: impl Into<String>) -> bool {
        self.ctx.verbose(text)
    }

    /// Emits a debug message.
    pub fn debug(&self, text: impl Into<String>) -> bool {
        self.ctx.debug(text)
    }

    /// Emits an informational message.
    pub fn information(&self, text: impl Into<String>) -> bool {
        self.ctx.information(text)
    }

    /// Emits a progress report.
    pub fn progress(&self, percent: Option<f64>, activity: impl Into<String>) -> bool {
        self.ctx.progress(percent, activity)
    }

    /// Whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.ctx.stop_requested()
    }

    /// `Err(Stopped)` once a stop was requested: `ctx.check_stop()?` in a
    /// loop. While the job is suspended it first waits to be resumed.
    pub fn check_stop(&self) -> Result<(), Stopped> {
        self.pause_point();
        if self.ctx.stop_requested() {
            Err(Stopped)
        } else {
            Ok(())
        }
    }

    /// Waits while the job is suspended; returns at once otherwise.
    pub fn pause_point(&self) {
        self.ctx.stop_token().pause_point();
    }

    /// Sleeps for `duration` of running time (time suspended does not
    /// count), or less if a stop is requested meanwhile, in which case it
    /// returns `Err(Stopped)`.
    pub fn sleep(&self, duration: Duration) -> Result<(), Stopped> {
        if self.ctx.stop_token().sleep_running(duration) {
            Err(Stopped)
        } else {
            Ok(())
        }
    }

    /// The job's stop token, to hand to code that waits or polls on its own
    /// (`wait_timeout` blocks a thread until a stop or a timeout).
    pub fn stop_token(&self) -> StopToken {
        self.ctx.stop_token()
    }

    /// The underlying job context (exit code, Blocked, child jobs).
    pub fn job(&self) -> &JobContext {
        &self.ctx
    }
}

impl<T> fmt::Debug for ThreadContext<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadContext")
            .field("id", &self.ctx.id())
            .finish()
    }
}
