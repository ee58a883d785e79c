//! The records channel: how a process job's program hands the process
//! executor whole [`Record`](crate::Record)s rather than bytes. The
//! executor opens a pipe, names its file descriptor in [`RECORDS_FD_ENV`],
//! and reads JSON lines, one record each; the script worker writes them.
//! Both sides take the names from here.

/// The environment variable that names the records file descriptor.
pub const RECORDS_FD_ENV: &str = "JOBCTL_RECORDS_FD";

/// The category of an error record that states why the job fails: if the
/// process then exits non-zero, the record's message becomes the job's
/// reason (instead of `exited with status N`) and is not emitted as a record.
pub const FAILURE_CATEGORY: &str = "JobFailure";
