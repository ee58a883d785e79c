//! The embedded script language of jobctl: [Rhai](https://rhai.rs) scripts
//! that run as thread jobs (live values) or in a worker process (values as
//! JSON), as a PowerShell script block runs under `Start-ThreadJob` or
//! `Start-Job`.
//!
//! Every script has the stream functions `emit(x)` (output), `error(x)` (a
//! non-terminating error record), `warn(x)`, `verbose(x)`, `debug(x)`,
//! `info(x)` (and `print(x)`, also information), `progress(percent,
//! "activity")` and `sleep(seconds)`, which returns early, ending the
//! script, when the job is stopped. `throw "msg"` fails the job with reason
//! `msg`; records written before it are kept. The value of the last
//! expression is output unless it is unit. A stop request ends a script
//! between two operations, so even `loop {}` stops at once. [`Limits`] bound
//! operations, string, array and map sizes, call and expression depth;
//! exceeding one fails the job with a reason naming the limit. Sizes are
//! bounded by default (16 MiB strings, a million-element arrays and maps),
//! so a runaway script fails its own job instead of exhausting the memory
//! of the process it shares with others. A script that does not
//! parse, or fails at run time, fails the job with the engine's message and
//! `(line L, column C)`. Scripts are sandboxed: the standard functions only,
//! no files, no modules, no processes.
//!
//! One [`run_script`] serves both executors through a [`Sink`]:
//!
//! **Thread jobs** ([`start_script`], [`ScriptExecutor`], type name
//! `ThreadJob`): output values are `rhai::Dynamic`s kept live in the session
//! ([`jobs_core::Payload::Live`], rendered to JSON only when a consumer asks);
//! the typed handle hands back the very `Arc<Dynamic>` the script emitted.
//! A session that runs scripts registers [`ScriptExecutor`] as its
//! `ThreadJob` executor: it runs closures as `ThreadExecutor` does, and also
//! a spec with [`ScriptParams`] and no payload ([`ScriptParams`] is what a
//! CLI sends and a durable store keeps), e.g.
//! `JobSpec::new("ThreadJob", script).params(serde_json::to_value(ScriptParams { .. }))`.
//!
//! **Process jobs** (type name `BackgroundJob`, run by the process
//! executor): a binary's worker mode. The binary's `main` starts with
//!
//! ```no_run
//! let mut args = std::env::args_os().skip(1).peekable();
//! if args.peek().is_some_and(|a| a == jobs_script::WORKER_ARG) {
//!     std::process::exit(jobs_script::worker_main(args.skip(1)));
//! }
//! ```
//!
//! and a process job runs `current_exe()` with the arguments of
//! [`worker_args`] (`__worker [--limits JSON] (-e SCRIPT | --script FILE |
//! --stdin-bytes N)`); a process job gives the worker its script on stdin
//! ([`WorkerScript::Stdin`]).
//! The process executor gives the worker its records channel: an inherited
//! descriptor named by [`RECORDS_FD_ENV`] (`JOBCTL_RECORDS_FD`), opened
//! through `/dev/fd/N`. Each line on it is one serialized
//! [`jobs_core::Record`]; output values are records of kind `value` (JSON),
//! not stdout. Stop is SIGTERM (or SIGINT): the worker stops between
//! operations and exits [`EXIT_STOPPED`] (143). A failed script exits
//! [`EXIT_FAILED`] (1) after writing an error record of category
//! [`FAILURE_CATEGORY`] (`JobFailure`) whose message is the exact reason
//! (`msg` for `throw "msg"`), for the process executor to adopt as the job's
//! reason; nothing goes to stderr then, so the message is not received
//! twice. Without the channel (a worker run by hand) output goes to stdout
//! and the other streams to stderr as text, the failure reason too. Bad
//! arguments exit [`EXIT_USAGE`] (2).
//!
//! # Example
//! ```
//! use jobs_core::{JobState, Session};
//! use jobs_script::{start_script, to_json, Limits};
//!
//! let session = Session::new()?;
//! let job = start_script(&session, r#"
//!     warn("counting");
//!     let total = 0;
//!     for i in 1..=4 { total += i; emit(i); }
//!     #{ "total": total }
//! "#, &Limits::new().max_operations(10_000))?;
//! assert_eq!(job.wait_blocking()?.state, JobState::Completed);
//! let values = job.receive()?; // the live values, by reference
//! assert_eq!(values.len(), 5);
//! assert_eq!(to_json(&values[4]), serde_json::json!({ "total": 10 }));
//! # Ok::<(), jobs_core::Error>(())
//! ```

mod engine;
mod limits;
mod source;
mod thread;
mod value;
mod worker;

pub use engine::{
    engine, run_script, ScriptError, ScriptErrorKind, Sink, MAX_OUTPUT_DEPTH, SCRIPT_STACK_SIZE,
};
pub use limits::{
    default_max_memory, Limit, Limits, DEFAULT_MAX_ARRAY_SIZE, DEFAULT_MAX_MAP_SIZE,
    DEFAULT_MAX_STRING_SIZE, MIN_DEFAULT_MAX_MEMORY,
};
pub use rhai::Dynamic;
pub use source::{read_script_file, ScriptFileError, MAX_SCRIPT_SIZE};
pub use thread::{
    script_spec, script_work, start_script, start_script_spec, ScriptExecutor, ScriptParams,
};
pub use value::{render_live, to_json, to_text};
pub use worker::{
    run_worker, run_worker_with, worker_args, worker_main, WorkerScript, EXIT_COMPLETED,
    EXIT_FAILED, EXIT_STOPPED, EXIT_USAGE, FAILURE_CATEGORY, RECORDS_FD_ENV, WORKER_ARG,
};
