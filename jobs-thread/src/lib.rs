//! Thread jobs (`ThreadJob`): closures that run on OS threads of this
//! process, with output handed back by reference.
//!
//! [`ThreadExecutor`] is a [`jobs_core::JobExecutor`]: every running job has
//! an OS thread of its own (never a worker of the async runtime; idle
//! threads are kept a few seconds for the next job), the session's
//! throttle keeps at most [`DEFAULT_THROTTLE`] of them running and queues the
//! rest NotStarted, a panic fails only its own job, and a stop is
//! cooperative: the closure sees it through its context, and a job that has
//! not returned within the grace period ([`DEFAULT_GRACE`]) is abandoned,
//! marked Stopped with a reason that says so. Output values are live: the
//! session keeps the `Arc` the job emitted, and [`ThreadJob::receive`] hands
//! that same allocation back, so values need be neither `Clone` nor
//! `Serialize`. The closure travels in [`jobs_core::JobSpec::payload`] as a
//! [`ThreadWork`]; [`SessionThreadExt`] wraps that in a typed API.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use jobs_core::{JobState, Session};
//! use jobs_thread::SessionThreadExt;
//!
//! /// Neither Clone nor Serialize.
//! struct Report { lines: usize }
//!
//! let session = Session::new()?;
//! let job = session.start_thread(|ctx| {
//!     ctx.progress(Some(50.0), "counting");
//!     ctx.sleep(Duration::from_millis(1))?; // returns early on stop
//!     ctx.output(Report { lines: 42 });
//!     Ok(())
//! })?;
//! assert_eq!(job.wait_blocking()?.state, JobState::Completed);
//! let reports: Vec<Arc<Report>> = job.receive()?;
//! assert_eq!(reports[0].lines, 42);
//! # Ok::<(), jobs_core::Error>(())
//! ```

mod context;
mod executor;
mod handle;
mod pool;

pub use context::{Stopped, ThreadContext};
pub use executor::{ThreadExecutor, ThreadWork, DEFAULT_GRACE, DEFAULT_THROTTLE, TYPE_NAME};
pub use handle::{SessionThreadExt, ThreadJob, CLOSURE_COMMAND};
