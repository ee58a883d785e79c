//! Executables as jobctl executors.
//!
//! An executable file `NAME` in an executor folder (`$JOBCTL_HOME/executors`
//! or a folder of `JOBCTL_EXECUTOR_PATH`) is an executor of job type `NAME`:
//! [`ExecutableExecutor`] starts it at the first job of the type, keeps it
//! running, and speaks a line protocol with it (JSON lines on its stdin and
//! stdout, version [`PROTOCOL_VERSION`]): `start` and `stop` lines go in,
//! `hello`, `record`, `progress`, `state` and `exit` lines come out. One
//! process serves every job of its type at once, each keyed by the job's
//! instance id. A process that exits fails the jobs it was running
//! (`executor NAME exited: ...`) and is started again for the next job.
//! Its stderr goes to the log.
//!
//! The file is trusted by the same rule as a plugin library
//! ([`jobs_core::plugin::check_trusted`]): it and every folder above it
//! belong to this user or root and are writable by no one else.
//! [`scan`] finds the executables of a list of folders.
//!
//! The protocol is written down in `plugins/README.md` ("Executables as
//! executors"); `plugins/py-example` is an executor in Python.
#![deny(missing_docs)]

mod discover;
mod executor;
mod protocol;

pub use discover::{scan, search_path, DiscoveryError, Found, Scan};
pub use executor::ExecutableExecutor;
pub use protocol::PROTOCOL_VERSION;
