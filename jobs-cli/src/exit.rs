//! Exit codes: part of the command line's public contract.

/// Success.
pub(crate) const SUCCESS: i32 = 0;
/// The operation failed (refused remove, job failed to start, unknown
/// executor type), or `run`'s job failed without an exit code.
pub(crate) const FAILURE: i32 = 1;
/// A usage error, or no such job.
pub(crate) const USAGE: i32 = 2;
/// `wait --timeout` passed first.
pub(crate) const TIMEOUT: i32 = 124;
/// `run`'s job was stopped (as a shell reports SIGINT).
pub(crate) const STOPPED: i32 = 130;

/// An error that ends `jobctl` with a given exit code; its message is
/// printed as `jobctl: MESSAGE`.
#[derive(Debug)]
pub(crate) struct Exit {
    /// The exit code.
    pub code: i32,
    /// The message (empty: print nothing).
    pub message: String,
}

impl Exit {
    /// An error with a code and a message.
    pub(crate) fn new(code: i32, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}
