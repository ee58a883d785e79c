//! The session's home: where its socket, database, logs and plugins live.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a session's home cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// Neither `JOBCTL_HOME`, `XDG_STATE_HOME` nor `HOME` is set.
    #[error("cannot find the session's home: set JOBCTL_HOME or HOME")]
    Unset,
    /// The current directory, needed to make a relative home absolute.
    #[error("cannot read the current directory")]
    CurrentDir(#[source] std::io::Error),
    /// Creating the directory failed.
    #[error("cannot create {}", .0.display())]
    Create(PathBuf, #[source] std::io::Error),
    /// Setting its mode failed.
    #[error("cannot set the mode of {}", .0.display())]
    Mode(PathBuf, #[source] std::io::Error),
}

/// The paths of one session.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// `--home`, else `$JOBCTL_HOME`, else `$XDG_STATE_HOME/jobctl`, else
    /// `~/.local/state/jobctl`. The directory is made absolute.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Home, HomeError> {
        let dir = match flag {
            Some(d) => d,
            None => jobs_core::state_dir().ok_or(HomeError::Unset)?,
        };
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir()
                .map_err(HomeError::CurrentDir)?
                .join(dir)
        };
        Ok(Home { dir })
    }

    /// Creates the directory (mode 0700) if needed.
    pub fn create(&self) -> Result<(), HomeError> {
        fs::create_dir_all(&self.dir).map_err(|e| HomeError::Create(self.dir.clone(), e))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| HomeError::Mode(self.dir.clone(), e))?;
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("jobctl.sock")
    }

    /// Held by the daemon for its whole life: one daemon per home.
    pub fn daemon_lock(&self) -> PathBuf {
        self.dir.join("daemon.lock")
    }

    /// Held by a client while it starts the daemon.
    pub fn start_lock(&self) -> PathBuf {
        self.dir.join("start.lock")
    }

    /// The daemon's log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The job database.
    pub fn database(&self) -> PathBuf {
        self.dir.join("jobs.db")
    }

    /// Files of detached jobs' output.
    pub fn detached(&self) -> PathBuf {
        self.dir.join("detached")
    }
}
