//! The session's home: where its socket, database, logs and plugins live.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The paths of one session.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// `--home`, else `$JOBCTL_HOME`, else `$XDG_STATE_HOME/jobctl`, else
    /// `~/.local/state/jobctl`. The directory is made absolute.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Home> {
        let dir = match flag {
            Some(d) => d,
            None => match std::env::var_os("JOBCTL_HOME").filter(|v| !v.is_empty()) {
                Some(d) => PathBuf::from(d),
                None => match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
                    Some(x) => PathBuf::from(x).join("jobctl"),
                    None => {
                        let home = std::env::var_os("HOME")
                            .filter(|v| !v.is_empty())
                            .context("cannot find the session's home: set JOBCTL_HOME or HOME")?;
                        PathBuf::from(home).join(".local/state/jobctl")
                    }
                },
            },
        };
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(dir)
        };
        Ok(Home { dir })
    }

    /// Creates the directory (mode 0700) if needed.
    pub fn create(&self) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set the mode of {}", self.dir.display()))?;
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
