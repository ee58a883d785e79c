//! `SlurmJob`: jobs handed to a Slurm cluster, as ordinary jobctl jobs.
//!
//! [`SlurmExecutor`] is a [`JobExecutor`](jobs_core::JobExecutor) of type
//! [`TYPE_NAME`] (`SlurmJob`) that talks to Slurm only through its
//! command-line tools, Slurm's stable interface: `sbatch --parsable` to
//! submit, one `squeue` call per poll for all of its jobs (and `sacct` for
//! jobs the controller has forgotten), `scancel` to stop. The job's params
//! are a [`SlurmSpec`]: a shell line, its directory, environment and name,
//! and the Slurm options (partition, time limit, CPUs, memory, more
//! `sbatch` arguments); `jobctl start --type SlurmJob -c LINE` sends the
//! shell line with the caller's directory and environment. The job's stdout
//! and stderr files are read as it runs into Output and Error records,
//! byte-exact, and deleted once the job ended and was read. A job whose
//! session ended without stopping it is re-adopted by a later session by
//! its Slurm job id.
//!
//! Built as a `cdylib`, the crate is a jobctl plugin (feature `export`, on
//! by default); the plugin's executor is [`SlurmExecutor::from_env`], set
//! up by `JOBCTL_SLURM_DIR`, `JOBCTL_SLURM_POLL` and `JOBCTL_SLURM_BIN`.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use jobs_core::{JobState, Session, WaitMode};
//! use jobs_slurm::{SlurmExecutor, SlurmSpec};
//!
//! let session = Session::new()?;
//! session.register(Arc::new(SlurmExecutor::new()));
//! let spec = SlurmSpec::new("hostname").partition("debug").time("5").cpus(1);
//! let id = session.start(spec.into_job_spec())?;
//! session.wait_blocking(&[id], WaitMode::All, None)?;
//! assert_eq!(session.info(id)?.state, JobState::Completed);
//! # Ok::<(), jobs_core::Error>(())
//! ```

mod error;
mod executor;
mod files;
mod follow;
mod poller;
mod spec;
mod status;
mod tools;

pub use error::SlurmError;
pub use executor::{SlurmExecutor, DEFAULT_POLL_INTERVAL};
pub use spec::{SlurmSpec, TYPE_NAME};

#[cfg(feature = "export")]
jobs_core::export_executor!(SlurmExecutor::from_env());
