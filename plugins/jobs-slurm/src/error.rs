//! Why submitting or following a Slurm job went wrong.

use std::path::PathBuf;

/// An error of the Slurm executor. Shown to the user as a job's reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlurmError {
    /// The job's params are not a Slurm job.
    #[error("malformed SlurmJob parameters: {0}")]
    Params(String),
    /// A Slurm tool could not be started (not installed, not on `PATH`).
    #[error("cannot run {tool}")]
    Spawn {
        /// The tool (`sbatch`, ...).
        tool: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A Slurm tool failed.
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        /// The tool.
        tool: String,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// `sbatch --parsable` printed no job id.
    #[error("sbatch printed no job id: {0:?}")]
    NoJobId(String),
    /// No folder for the jobs' files could be found.
    #[error("no folder for Slurm job files: set JOBCTL_SLURM_DIR, JOBCTL_HOME or HOME")]
    NoStateDir,
    /// A job's file or folder could not be used.
    #[error("cannot use {path}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A job's saved state is unreadable.
    #[error("unreadable job state {path}: {message}")]
    State {
        /// The state file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl SlurmError {
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SlurmError::File {
            path: path.into(),
            source,
        }
    }
}
