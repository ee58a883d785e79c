//! What a job's process is spawned as: tokio's child, which tokio reaps,
//! or this crate's own ([`crate::pidfd::OwnChild`]), reaped through a pidfd
//! of its own. [`crate::spawn::spawn_as`] builds the command either way.

use tokio::process::{Child, ChildStdin, Command};

/// A child process as [`crate::spawn::spawn_as`] starts it.
pub(crate) trait Spawned: Sized {
    /// Starts the command (inside the runtime that is to drive its I/O).
    fn spawn(cmd: &mut Command) -> std::io::Result<Self>;

    /// The child's stdin pipe, ready to be written from that runtime.
    fn take_stdin(&mut self) -> Option<ChildStdin>;
}

impl Spawned for Child {
    fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        cmd.spawn()
    }

    fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }
}
