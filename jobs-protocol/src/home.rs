//! The session's home: where its socket, database, logs and plugins live.
//!
//! Whoever can write into the home can plant a socket there and receive
//! every command's environment, or plant a symlink where the daemon writes.
//! So both sides use a home only if it is a real directory (not a symlink)
//! owned by the caller and writable by no one else ([`Home::verify`]). A
//! missing home is created 0700; an existing one is never chmodded: the
//! user's folder stays as the user made it, or is refused with the reason.
//! Files in it are opened without following symlinks ([`open_private`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// Why a session's home cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// Neither `JOBCTL_HOME`, `XDG_STATE_HOME` nor `HOME` is set.
    #[error("cannot find the session's home: set JOBCTL_HOME or HOME")]
    Unset,
    /// The current directory, needed to make a relative home absolute.
    #[error("cannot read the current directory")]
    CurrentDir(#[source] io::Error),
    /// Creating the directory failed.
    #[error("cannot create {}", .0.display())]
    Create(PathBuf, #[source] io::Error),
    /// Its metadata cannot be read.
    #[error("cannot inspect the session's home {}", .0.display())]
    Inspect(PathBuf, #[source] io::Error),
    /// The home is a symbolic link.
    #[error(
        "the session's home {} is a symbolic link: refusing to use it; set JOBCTL_HOME to the folder it points to",
        .0.display()
    )]
    Symlink(PathBuf),
    /// The home is not a directory.
    #[error("the session's home {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The home belongs to another user.
    #[error(
        "the session's home {} belongs to uid {owner}, not to you (uid {me}): refusing to use it; set JOBCTL_HOME to a folder of your own",
        .dir.display()
    )]
    Owner {
        /// The home.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// The caller's effective uid.
        me: u32,
    },
    /// Group or others may write into the home.
    #[error(
        "the session's home {} is writable by group or others (mode {mode:o}): refusing to use it; run `chmod go-w {}` or set JOBCTL_HOME to a private folder",
        .dir.display(), .dir.display()
    )]
    Writable {
        /// The home.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
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

    /// Checks that the home can be trusted: a directory, not a symlink,
    /// owned by this process's effective user, not writable by group or
    /// others. `Ok(false)` if it does not exist.
    pub fn verify(&self) -> Result<bool, HomeError> {
        let meta = match fs::symlink_metadata(&self.dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(HomeError::Inspect(self.dir.clone(), e)),
        };
        let dir = || self.dir.clone();
        if meta.file_type().is_symlink() {
            return Err(HomeError::Symlink(dir()));
        }
        if !meta.is_dir() {
            return Err(HomeError::NotADirectory(dir()));
        }
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            return Err(HomeError::Owner {
                dir: dir(),
                owner: meta.uid(),
                me,
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(HomeError::Writable {
                dir: dir(),
                mode: meta.mode() & 0o7777,
            });
        }
        Ok(true)
    }

    /// Creates the directory (mode 0700; missing parents as the umask
    /// says) if it does not exist, then [`verify`](Home::verify)s it. An
    /// existing home keeps its mode.
    pub fn create(&self) -> Result<(), HomeError> {
        if !self.verify()? {
            if let Some(parent) = self.dir.parent() {
                fs::create_dir_all(parent).map_err(|e| HomeError::Create(self.dir.clone(), e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(&self.dir) {
                Ok(()) => {}
                // Another command made it first: verified below.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(HomeError::Create(self.dir.clone(), e)),
            }
            if !self.verify()? {
                return Err(HomeError::Create(
                    self.dir.clone(),
                    io::ErrorKind::NotFound.into(),
                ));
            }
        }
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

    /// Held by the daemon for its whole life: one daemon per home. It
    /// holds the daemon's pid, for messages about a daemon that does not
    /// answer.
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

    /// The pid the daemon wrote into its life lock, if any.
    pub fn daemon_pid(&self) -> Option<u32> {
        let file = open_private(&self.daemon_lock(), Access::Read).ok()?;
        let mut text = String::new();
        io::Read::read_to_string(&mut &file, &mut text).ok()?;
        text.trim().parse().ok().filter(|&p| p > 0)
    }
}

/// How [`open_private`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read an existing file.
    Read,
    /// Write, creating the file if needed, keeping what it holds (locks).
    Write,
    /// Append, creating the file if needed (logs).
    Append,
}

/// Opens a file of the home: never through a symlink (`O_NOFOLLOW`), closed
/// on exec, created mode 0600.
pub fn open_private(path: &Path, access: Access) -> io::Result<File> {
    let mut o = OpenOptions::new();
    match access {
        Access::Read => o.read(true),
        Access::Write => o.write(true).create(true).truncate(false),
        Access::Append => o.append(true).create(true),
    };
    o.mode(0o600)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_home_is_created_0700_and_an_existing_one_keeps_its_mode() {
        let parent = tempfile::tempdir().expect("tempdir");
        let home = Home::resolve(Some(parent.path().join("a/b"))).expect("resolve");
        assert!(!home.verify().expect("verify"));
        home.create().expect("create");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(home.dir()), 0o700);
        fs::set_permissions(home.dir(), fs::Permissions::from_mode(0o755)).expect("chmod");
        home.create().expect("create again");
        assert_eq!(mode(home.dir()), 0o755);
        fs::set_permissions(home.dir(), fs::Permissions::from_mode(0o775)).expect("chmod");
        assert!(matches!(home.create(), Err(HomeError::Writable { .. })));
        assert_eq!(mode(home.dir()), 0o775);
    }

    #[test]
    fn a_symlink_is_neither_a_home_nor_a_file_of_one() {
        let parent = tempfile::tempdir().expect("tempdir");
        let real = parent.path().join("real");
        fs::create_dir(&real).expect("mkdir");
        let link = parent.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let home = Home::resolve(Some(link)).expect("resolve");
        assert!(matches!(home.verify(), Err(HomeError::Symlink(_))));
        let target = parent.path().join("target");
        fs::write(&target, b"x").expect("write");
        let planted = real.join("daemon.log");
        std::os::unix::fs::symlink(&target, &planted).expect("symlink");
        assert!(open_private(&planted, Access::Append).is_err());
        assert_eq!(fs::read(&target).expect("read"), b"x");
    }
}
