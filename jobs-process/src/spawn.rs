//! Building and spawning a job's process: argv, cwd, environment, its own
//! process group, and the records channel as an inherited descriptor.
//!
//! The records descriptor reaches the child by plain inheritance: its
//! close-on-exec flag is cleared just for the spawn and the parent's copy is
//! closed right after, all under one lock that every spawn of this crate
//! takes, so no other job (nor the watcher) inherits it. This keeps spawns
//! on std's `posix_spawn` path (a vfork, whose cost does not grow with the
//! host's memory); a `pre_exec` hook, the only other way to place a
//! descriptor, forces a full `fork` and doubled the cost of a short job.
//! The program is looked up in the child's `PATH` here, for the same reason
//! (std falls back to `fork` when it must search a changed `PATH`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use jobs_core::JobFailure;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::runtime::Handle;

use crate::records::RECORDS_FD_ENV;
use crate::spawned::Spawned;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::ProcessSpec;

/// Held while a descriptor meant for one child is inheritable.
pub(crate) static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// The pieces a job's process is started with.
pub(crate) struct Launch {
    /// The argv to execute (the job's, or a wrapper around it).
    pub(crate) argv: Vec<OsString>,
    /// What to name in a "cannot start" reason.
    pub(crate) shown: String,
    pub(crate) stdout: Stdio,
    pub(crate) stderr: Stdio,
    /// The write end of the records channel, inherited by the child.
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

fn cannot_start(program: &str, err: &std::io::Error) -> JobFailure {
    JobFailure::new(format!("cannot start '{program}': {err}"))
}

/// Finds the file `program` names, as `execvp` would: a name with a `/` is
/// a path (relative to the job's cwd), any other is looked up in the `PATH`
/// the child gets.
pub(crate) fn resolve_program(
    spec: &ProcessSpec,
    program: impl AsRef<OsStr>,
) -> Result<PathBuf, JobFailure> {
    let program = program.as_ref();
    if program.is_empty() {
        return Err(JobFailure::new("the job has no program to run"));
    }
    let candidates: Vec<PathBuf> = if program.as_bytes().contains(&b'/') {
        vec![spec.cwd.clone().unwrap_or_default().join(program)]
    } else {
        let path = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .or_else(|| {
                (!spec.env_clear)
                    .then(|| std::env::var_os("PATH"))
                    .flatten()
            })
            .unwrap_or_else(|| "/usr/bin:/bin".into());
        let base = spec.cwd.clone().unwrap_or_default();
        path.as_bytes()
            .split(|&b| b == b':')
            .map(|d| {
                let d: &OsStr = if d.is_empty() {
                    OsStr::new(".")
                } else {
                    OsStr::from_bytes(d)
                };
                base.join(d).join(program)
            })
            .collect()
    };
    let mut denied = false;
    for c in candidates {
        match nix::unistd::access(&c, nix::unistd::AccessFlags::X_OK) {
            Ok(()) if c.is_file() => return Ok(c),
            Ok(()) | Err(nix::errno::Errno::EACCES) => denied = true,
            Err(_) => {}
        }
    }
    let errno = if denied {
        nix::libc::EACCES
    } else {
        nix::libc::ENOENT
    };
    Err(cannot_start(
        &program.to_string_lossy(),
        &std::io::Error::from_raw_os_error(errno),
    ))
}

/// Spawns the process in a new process group, registered with the I/O
/// runtime `io`, as tokio's child or as another kind of [`Spawned`] child.
/// The parent's copy of the records fd is closed on return.
pub(crate) fn spawn_as<C: Spawned>(
    io: &Handle,
    spec: &ProcessSpec,
    launch: Launch,
) -> Result<C, JobFailure> {
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(JobFailure::new("the job has no program to run"));
    };
    // An absolute path needs no lookup: the exec itself reports a missing
    // or forbidden program, with the same error.
    // Every child of a batch shares its spec's variables, and so the path
    // found: one lookup for the batch, not one per child. A program removed
    // while the batch runs fails exec with the error the lookup would
    // give ("cannot start 'x': No such file or directory (os error 2)").
    let resolved = if Path::new(program).is_absolute() {
        PathBuf::from(program)
    } else {
        spec.env
            .found(program, spec.cwd.as_deref(), spec.env_clear, || {
                resolve_program(spec, program)
            })?
    };
    let mut cmd = Command::new(&resolved);
    cmd.arg0(program)
        .args(args)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(launch.stdout)
        .stderr(launch.stderr)
        .process_group(0)
        .kill_on_drop(false);
    if spec.env_clear {
        cmd.env_clear();
    }
    for (k, v) in spec.env.iter() {
        cmd.env(k, v);
    }
    cmd.env(RECORDS_FD_ENV, launch.records.as_raw_fd().to_string());
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    let spawned = {
        let _lock = SPAWN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        fcntl(
            launch.records.as_raw_fd(),
            FcntlArg::F_SETFD(FdFlag::empty()),
        )
        .map_err(|e| JobFailure::new(format!("cannot pass the records channel: {e}")))?;
        // tokio registers the child's pidfd and pipes with the runtime it
        // is spawned in: the executor's, whose driver always runs.
        let _g = io.enter();
        let spawned = C::spawn(&mut cmd);
        // Closing our copy before the lock is released is what keeps it
        // out of every other child, and lets the channel reach end of file
        // once the job's tree is gone.
        drop(launch.records);
        spawned
    };
    let mut child = spawned.map_err(|e| {
        if let Some(dir) = spec.cwd.as_deref().filter(|d| !d.is_dir()) {
            return cwd_failure(dir, &e);
        }
        cannot_start(&launch.shown, &e)
    })?;
    if let (Some(text), Some(mut pipe)) = (spec.stdin.clone(), child.take_stdin()) {
        // Written from the I/O runtime, as the process reads it; the pipe
        // closes when it is all written. A process that exits without
        // reading it all closes its end: that is its own business.
        io.spawn(async move {
            let _ = pipe
                .write_all(std::os::unix::ffi::OsStrExt::as_bytes(text.as_os_str()))
                .await;
        });
    }
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_lookup_names_the_program() {
        let spec = ProcessSpec::program(["no-such-program-here"]);
        let err = resolve_program(&spec, "no-such-program-here").expect_err("missing");
        assert!(
            err.reason.contains("'no-such-program-here'"),
            "{}",
            err.reason
        );
        assert!(err.reason.contains("os error 2"), "{}", err.reason);
        let spec = ProcessSpec::program(["sh"]).env_clear(true);
        let sh = resolve_program(&spec, "sh").expect("sh on the default path");
        assert!(sh.is_absolute());
        resolve_program(&spec, "/bin/sh").expect("absolute");
        let err = resolve_program(&spec, "/etc/passwd").expect_err("not executable");
        assert!(err.reason.contains("os error 13"), "{}", err.reason);
        let spec = ProcessSpec::program(["x"]).env("PATH", "/nonexistent:/bin");
        assert_eq!(
            resolve_program(&spec, "sh").expect("sh"),
            Path::new("/bin/sh")
        );
    }
}
