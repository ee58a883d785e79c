//! The job model of jobctl: PowerShell's background jobs, as a library.
//!
//! # The model
//! A [`Session`] owns a table of jobs. [`Session::start`] returns at once with
//! a job id; the work runs elsewhere, on an executor: another process, a
//! thread of this process, remote hosts, or a plugin. Executors only run
//! work; everything that is the same for every kind of job lives here: ids,
//! names, states, the record caches, throttles, timestamps, parents and
//! children. An executor implements one trait, [`JobExecutor`], whose `run`
//! returns when the work is over; it talks to the session only through its
//! [`JobContext`].
//!
//! **States.** A job is [`JobState::NotStarted`] while queued behind its
//! type's throttle, then `Running`, and ends `Completed`, `Failed` (with a
//! reason) or `Stopped`. `Blocked`, `Suspended` and `Disconnected` are
//! excursions; `Stopping` is the time between a stop request and the end.
//! [`JobState::can_transition_to`] is the one table of legal moves; the
//! session refuses any other with [`ErrorKind::IllegalTransition`].
//!
//! **Records.** A job writes [`Record`]s to seven [`Stream`]s (output,
//! error, warning, verbose, debug, information, progress). Records keep the
//! order they were produced in, across streams. A record's payload is text,
//! bytes (byte-exact process output), a JSON value, a progress or error
//! record, or a [`Live`] value: an `Arc` of this process handed back by
//! reference, never copied.
//!
//! **Receive.** [`Session::receive`] hands back what collected since the
//! last receive and removes it, unless [`ReceiveOptions::keep`] is set.
//! [`Session::follow`] does the same as records come, until the jobs finish.
//! `has_more_data` is true while a job can still produce records or holds
//! unreceived ones.
//!
//! **Children.** A job may open child jobs ([`JobContext::start_child`]):
//! one per remote host, say. A parent's state follows its children the way
//! PowerShell's does (any child Failed makes it Failed, else any Stopped
//! Stopped, else Completed); while it runs it shows Blocked if a child is
//! Blocked, else Disconnected if a child is Disconnected and none Failed.
//! Receiving from a parent returns its children's records, each tagged with
//! the child's id.
//!
//! **Wait, stop, remove.** [`Session::wait`] blocks until all or any jobs
//! are done, or a timeout passes (the jobs keep running).
//! [`Session::suspend`] pauses running jobs (Suspending, then Suspended)
//! where their executor can, and [`Session::resume`] lets them go on. [`Session::stop`]
//! ends a job; [`Session::remove`] deletes a finished one and refuses a
//! running one unless forced. Closing or dropping the session stops its
//! running jobs.
//!
//! **Storage.** The table and the records go through a [`Store`]: in
//! memory by default ([`MemoryStore`]); the CLI's daemon uses a durable one.
//!
//! The API is async (tokio); `*_blocking` wrappers serve plain programs.
//!
//! # Cargo features
//! A program that only runs jobs needs none. `test-kit` adds the executor
//! conformance suite (`conformance`, `conformance_tests!`) and the plugin
//! build helpers (`plugin::testing`), for executors' and plugins' tests;
//! `plugin-host` adds loading executors from cdylib plugins (`plugin::load`,
//! `plugin::scan`). Exporting an executor as a plugin
//! ([`export_executor!`]) needs neither.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use jobs_core::{async_trait, JobContext, JobExecutor, JobFailure, JobSpec,
//!     ReceiveOptions, Session, WaitMode, JobState};
//!
//! /// Emits the words of its command, one record each.
//! struct Echo;
//!
//! #[async_trait]
//! impl JobExecutor for Echo {
//!     fn type_name(&self) -> &str { "EchoJob" }
//!     async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
//!         for word in spec.command.split_whitespace() {
//!             ctx.output(word);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let session = Session::new()?;
//! session.register(Arc::new(Echo));
//! let id = session.start(JobSpec::new("EchoJob", "hello jobs"))?;
//! session.wait_blocking(&[id], WaitMode::All, None)?;
//! assert_eq!(session.info(id)?.state, JobState::Completed);
//! let words: Vec<String> = session
//!     .receive(&[id], ReceiveOptions::default())?
//!     .into_iter()
//!     .map(|r| String::from_utf8_lossy(&r.record.payload.to_display_bytes()).into_owned())
//!     .collect();
//! assert_eq!(words, ["hello", "jobs"]);
//! assert!(!session.info(id)?.has_more_data);
//! # Ok::<(), jobs_core::Error>(())
//! ```
#![deny(missing_docs)]

mod cell;
pub mod channel;
mod context;
mod duration;
mod error;
mod event;
mod executor;
mod failure;
mod info;
mod paths;
mod query;
mod receive;
mod record;
mod session;
mod shared_str;
mod shell;
mod signal;
mod spec;
mod state;
mod store;
mod throttle;
mod wait;

#[cfg(feature = "test-kit")]
pub mod conformance;
pub mod os_serde;
pub mod plugin;

pub use async_trait::async_trait;
pub use cell::{StopOptions, StopToken};
pub use context::JobContext;
pub use duration::{format_duration, parse_duration, ParseDurationError};
pub use error::{Error, ErrorKind, StoreError, SuspendError};
pub use event::JobEvent;
pub use executor::JobExecutor;
pub use failure::{panic_message, JobFailure};
pub use info::{command_line, JobId, JobInfo};
pub use paths::state_dir;
pub use query::JobFilter;
pub use receive::{Follow, ReceiveOptions};
pub use record::{
    ErrorRecord, Live, ParseStreamError, Payload, PayloadError, PayloadKind, ProgressRecord,
    Received, Record, RenderFn, Stream,
};
pub use session::{
    default_batch_throttle, BatchRebuild, BatchSpec, EventStream, Halt, HaltWhen, Lagged,
    RebuiltBatch, Session, SessionBuilder, BATCH_TYPE, SESSION_ENDED_REASON,
};
pub use shared_str::SharedStr;
pub use shell::{shell_quote, shell_quote_bytes};
pub use signal::{parse_signal, signal_word};
pub use spec::{JobSpec, SpecMaker};
pub use state::{JobState, ParseStateError};
pub use store::{MemoryStore, RowChange, Store};
pub use wait::{WaitMode, WaitOutcome, WaitUntil};
