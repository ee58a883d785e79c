//! Building and spawning a job's process: argv, cwd, environment, its own
//! process group, and the records channel mapped to fd 3.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;

use command_fds::{CommandFdExt, FdMapping};
use jobs_core::JobFailure;
use tokio::process::{Child, Command};
use tokio::runtime::Handle;

use crate::records::{RECORDS_FD, RECORDS_FD_ENV};
use crate::ProcessSpec;

/// The pieces a job's process is started with.
pub(crate) struct Launch {
    /// The argv to execute (the job's, or a wrapper around it).
    pub(crate) argv: Vec<String>,
    /// What to name in a "cannot start" reason.
    pub(crate) shown: String,
    pub(crate) stdout: Stdio,
    pub(crate) stderr: Stdio,
    /// Becomes fd 3 of the child.
    pub(crate) records: OwnedFd,
}

/// Checks the working directory first, so that a bad one is reported as
/// such (the OS reports a failed `chdir` in the child like a missing program).
pub(crate) fn check_cwd(spec: &ProcessSpec) -> Result<(), JobFailure> {
    let Some(dir) = &spec.cwd else {
        return Ok(());
    };
    let err = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => std::io::Error::from_raw_os_error(nix::libc::ENOTDIR),
        Err(e) => e,
    };
    Err(cwd_failure(dir, &err))
}

fn cwd_failure(dir: &Path, err: &std::io::Error) -> JobFailure {
    JobFailure::new(format!(
        "cannot use '{}' as the working directory: {err}",
        dir.display()
    ))
}

/// Spawns the process in a new process group, registered with the I/O
/// runtime `io`. The parent's copy of the records fd is closed on return.
pub(crate) fn spawn(io: &Handle, spec: &ProcessSpec, launch: Launch) -> Result<Child, JobFailure> {
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(JobFailure::new("the job has no program to run"));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(launch.stdout)
        .stderr(launch.stderr)
        .process_group(0)
        .kill_on_drop(false);
    if spec.env_clear {
        cmd.env_clear();
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.env(RECORDS_FD_ENV, RECORDS_FD.to_string());
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: launch.records,
        child_fd: RECORDS_FD,
    }])
    .map_err(|e| JobFailure::new(format!("cannot pass the records channel: {e}")))?;
    let spawned = {
        // tokio registers the child's pidfd and pipes with the runtime it
        // is spawned in: the executor's, whose driver always runs.
        let _g = io.enter();
        cmd.spawn()
    };
    // `cmd` holds the parent's copy of the records fd: dropping it now is
    // what lets the channel reach end of file when the job's tree is gone.
    drop(cmd);
    spawned.map_err(|e| {
        if let Some(dir) = spec.cwd.as_deref().filter(|d| !d.is_dir()) {
            return cwd_failure(dir, &e);
        }
        JobFailure::new(format!("cannot start '{}': {e}", launch.shown))
    })
}
