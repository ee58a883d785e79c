//! BackgroundJob: jobs that run as separate process trees.
//!
//! [`ProcessExecutor`] is the `jobs_core::JobExecutor` of type
//! `BackgroundJob`. A job is a [`ProcessSpec`]: a program with its arguments
//! (no shell), or a shell line run by `/bin/sh -c`, with a working directory
//! and an environment (the host's, or an empty one, plus overrides). The
//! process's stdout becomes Output records and its stderr Error records, as
//! raw `Payload::Bytes` chunks of at most 1 MiB emitted as they are read:
//! binary data, NUL bytes, invalid UTF-8, a missing final newline and lines
//! of any length come back byte for byte, and nothing is held here beyond
//! one chunk per stream (the session's store decides what is kept). A pipe
//! that has carried 1 MiB gets a 1 MiB kernel buffer, so bulk output moves
//! in fewer, larger reads (at most 8 such pipes at a time: large pipes count
//! against the user's pipe allowance).
//! Exit 0 completes the job; status N fails it with `exited with status N`
//! and exit code N; a signal fails it with `killed by signal 9 (SIGKILL)`.
//! A program that cannot be started, or a working directory that cannot be
//! used, fails the job with a reason naming it and the OS error.
//!
//! The job's process is reaped through a pidfd of the job's own (Linux 5.3
//! and later; before that, by tokio's SIGCHLD handling): its exit is one
//! readiness on the runtime that drives the job. Its pipes are watched
//! only once it has run 2 to 6 ms (or is stopped), which one clock thread
//! shared by all jobs tells it: a job that ends sooner has its output read
//! once, at its end, and costs one wake-up in all.
//!
//! An attached job started from a thread outside any runtime is spawned on
//! that thread ([`jobs_core::JobExecutor::starts_in_place`]): no runtime
//! thread wakes to start it. Its I/O runs on the session's runtime when the
//! session built that runtime itself, so that its exit wakes the thread
//! that finishes it, and no other, before the waiting caller.
//!
//! # The records channel
//! Besides stdout and stderr, a job may write structured records. The
//! child finds a file descriptor number in `JOBCTL_RECORDS_FD` (any
//! number: read the variable) and writes JSON lines to it, one
//! [`jobs_core::Record`] per line in its serde form
//! `{"stream": S, "kind": K, "data": D}`:
//!
//! | `stream` | `output`, `error`, `warning`, `verbose`, `debug`, `information`, `progress` |
//! |---|---|
//! | `kind: "text"` | `data` is a string |
//! | `kind: "bytes"` | `data` is an array of byte values |
//! | `kind: "value"` | `data` is any JSON value (a structured output) |
//! | `kind: "progress"` | `data` is `{"percent": 50, "activity": "copy", "status": ""}` (`percent` optional) |
//! | `kind: "error"` | `data` is `{"message": "...", "category": "...", "details": ...}` (only `message` required) |
//!
//! ```text
//! {"stream":"warning","kind":"text","data":"disk almost full"}
//! {"stream":"progress","kind":"progress","data":{"percent":50,"activity":"copy"}}
//! {"stream":"output","kind":"value","data":{"files":3}}
//! ```
//! From a shell: `echo '{"stream":"verbose","kind":"text","data":"hi"}' >>/dev/fd/$JOBCTL_RECORDS_FD`
//! (`>>`: for a detached job the descriptor is a file; `>&N` works in bash,
//! but dash's `/bin/sh` refuses descriptors above 9).
//! An error record of category `JobFailure` ([`FAILURE_CATEGORY`]) is the
//! job's own reason for failing: when the process then exits non-zero, its
//! message becomes the job's reason in place of `exited with status N` (the
//! exit code is still kept), and it is not emitted as a record. (A detached
//! job delivers it as an ordinary error record.)
//! Blank lines are ignored. A line that is not such a record (or is longer
//! than 16 MiB) becomes an Error record (`Payload::Error`, category
//! `MalformedRecord`) quoting its start; it never fails the job. Records
//! keep their order within the channel; between the channel, stdout and
//! stderr, the order is the order in which this side reads them.
//!
//! The descriptor reaches the child by plain inheritance: its close-on-exec
//! flag is cleared only for the spawn, under a lock every spawn of this
//! crate takes, and the parent's copy is closed right after. Placing it at
//! a fixed number would need a `pre_exec` hook (`unsafe`, or the
//! `command-fds` crate), which forces std off its `posix_spawn` path onto a
//! full `fork`: that doubled the cost of a short job here, and grows with
//! the host's memory. The price: a process that another thread of the host
//! spawns in that instant also inherits the descriptor; it never writes to
//! it, and the job's end only waits up to 2 s for the channel to close.
//!
//! # Process groups, stop, and no orphans
//! Every job is the leader of its own process group (stdin is `/dev/null`,
//! or a pipe that gives it [`ProcessSpec::stdin`] and closes),
//! so the terminal's Ctrl-C never reaches it. Stop sends SIGTERM (and
//! SIGCONT) to the group, waits until no process of the group is alive
//! (zombies awaiting their reaper count as gone), and sends SIGKILL to the
//! group when the grace period (5 s by default) passes first. When the main
//! process exits on its own, what it left running in its group is ended
//! the same way: the job is its whole tree. A process that moves itself to
//! another group or session (`setsid`, daemons) leaves the job's tree; its
//! hold on the job's output pipes is cut 2 s after the group is gone.
//!
//! The trees must also die when the session ends without a word, its host
//! killed by SIGKILL. `PR_SET_PDEATHSIG` needs `pre_exec` again and only
//! covers the direct child, not grandchildren; a per-job supervisor process
//! doubles the processes and the start cost of every job. So each executor
//! starts one **watcher** on first use: a small `/bin/sh` in its own process
//! group that blocks reading a pipe whose write end only the executor holds.
//! The groups to end are kept in a registry, an anonymous in-memory file of
//! fixed slots that the executor writes in place (one `pwrite` when a job
//! starts, one when it ends, waking nobody) and the watcher reads only at
//! the end. When the pipe reaches end of file, which the kernel guarantees
//! when the host dies however it dies, the watcher sends SIGTERM to every
//! group in the registry, waits up to the grace period, and SIGKILLs the
//! rest. A job is registered right after it is spawned and forgotten once
//! its group is gone, so a reused group id is never signalled. The window
//! between spawn and registration is a few microseconds of the host's own
//! code. A watcher that dies is replaced at the next job start, on the same
//! registry.
//!
//! # Detached jobs
//! A spec with `detached: true` outlives its session. Its process writes
//! stdout, stderr and the records channel to files under a directory of its
//! own (`<detached dir>/<instance id>`, see
//! [`ProcessExecutor::detached_dir`]), and a wrapper shell records its exit
//! status there. The session reads the files as they grow; a later session
//! over the same store re-adopts the job (`JobExecutor::resumable` /
//! `resume`): it sees it Running, goes on reading where the last session
//! stopped, and gives it its final state and exit code. Detached jobs are
//! not registered with the watcher, and the session's end leaves them be.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use jobs_core::{JobState, ReceiveOptions, Session, WaitMode};
//! use jobs_process::{ProcessExecutor, ProcessSpec};
//!
//! let session = Session::new()?;
//! session.register(Arc::new(ProcessExecutor::new()));
//! let spec = ProcessSpec::shell("printf 'hello\\n'; echo oops >&2; exit 3");
//! let id = session.start(spec.into_job_spec())?;
//! session.wait_blocking(&[id], WaitMode::All, None)?;
//! let info = session.info(id)?;
//! assert_eq!(info.state, JobState::Failed);
//! assert_eq!(info.reason.as_deref(), Some("exited with status 3"));
//! assert_eq!(info.exit_code, Some(3));
//! let out: Vec<u8> = session
//!     .receive(&[id], ReceiveOptions::default())?
//!     .iter()
//!     .filter(|r| r.record.stream == jobs_core::Stream::Output)
//!     .flat_map(|r| r.record.payload.to_display_bytes())
//!     .collect();
//! assert_eq!(out, b"hello\n");
//! # Ok::<(), jobs_core::Error>(())
//! ```

mod attached;
mod detached;
mod executor;
mod group;
mod lent;
mod pause;
mod pidfd;
mod records;
mod spawn;
mod spawned;
mod spec;
mod ticker;
mod watcher;

pub use executor::{default_detached_dir, ProcessExecutor, DEFAULT_GRACE, DEFAULT_IO_THREADS};
pub use records::{parse_record_line, FAILURE_CATEGORY, MAX_RECORD_LINE, RECORDS_FD_ENV};
pub use spec::{Command, Env, ProcessSpec, SpecError, TYPE_NAME};
