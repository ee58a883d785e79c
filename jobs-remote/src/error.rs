//! The error of running on one host: which host, what kind of problem, and
//! a message that becomes the child job's reason.

use jobs_core::JobFailure;

/// The exit code of a child job whose host could not be reached or stopped
/// answering ([`ErrorKind::is_unreachable`]), as ssh(1) exits 255 when it
/// cannot connect: pdsh and clush users read it the same way. Its reason
/// names the host and the cause; a command that itself exits 255 has the
/// reason `exited with status 255` instead.
pub const UNREACHABLE_EXIT_CODE: i32 = 255;

/// What went wrong on a host, for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The host string or the job's parameters cannot be used.
    InvalidInput,
    /// The ssh config file could not be read or parsed.
    Config,
    /// The host name does not resolve.
    Resolve,
    /// The TCP connection was refused.
    ConnectionRefused,
    /// The TCP connection did not succeed within the connect timeout.
    ConnectTimeout,
    /// Another failure to reach the host.
    Unreachable,
    /// The SSH handshake failed.
    Handshake,
    /// The host is not in known_hosts (and new keys are not accepted).
    UnknownHostKey,
    /// The host's key differs from the one in known_hosts.
    ChangedHostKey,
    /// The host's key is marked `@revoked` in known_hosts.
    RevokedHostKey,
    /// known_hosts could not be read, checked or written.
    KnownHosts,
    /// The server refused every identity we offered.
    Auth,
    /// An identity file is encrypted and no agent holds the key.
    EncryptedKey,
    /// Opening or driving the channel failed.
    Channel,
    /// The connection broke or went silent while the command ran.
    ConnectionLost,
}

impl ErrorKind {
    /// Whether the host could not be reached, or stopped answering: its
    /// name does not resolve, the TCP connection is refused or times out,
    /// the SSH handshake fails, or the connection broke while the command
    /// ran. A refused key or login is not: the host answered.
    pub fn is_unreachable(self) -> bool {
        matches!(
            self,
            ErrorKind::Resolve
                | ErrorKind::ConnectionRefused
                | ErrorKind::ConnectTimeout
                | ErrorKind::Unreachable
                | ErrorKind::Handshake
                | ErrorKind::ConnectionLost
        )
    }
}

/// An error on one host. Its display text names the host as the user wrote
/// it and the cause; it is what the host's child job shows as its reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("host {host}: {message}")]
pub struct RemoteError {
    host: String,
    kind: ErrorKind,
    message: String,
}

impl RemoteError {
    /// An error of `kind` on `host` (as the user wrote it).
    pub fn new(host: impl Into<String>, kind: ErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            host: host.into(),
            kind,
            message: message.into(),
        }
    }

    /// The host as the user wrote it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The cause, without the host.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How the host's child job fails: this error as its reason, and
    /// [`UNREACHABLE_EXIT_CODE`] as its exit code if the host could not be
    /// reached.
    pub fn to_failure(&self) -> JobFailure {
        let mut failure = JobFailure::new(self.to_string());
        if self.kind.is_unreachable() {
            failure.exit_code = Some(UNREACHABLE_EXIT_CODE);
        }
        failure
    }
}

/// Builds errors for one host without repeating its name.
#[derive(Clone, Debug)]
pub(crate) struct HostErr {
    pub(crate) host: String,
}

impl HostErr {
    pub(crate) fn err(&self, kind: ErrorKind, message: impl Into<String>) -> RemoteError {
        RemoteError::new(self.host.clone(), kind, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_host_fails_with_ssh_s_exit_code() {
        let down = RemoteError::new("web13", ErrorKind::ConnectionRefused, "connection refused");
        let f = down.to_failure();
        assert_eq!(f.reason, "host web13: connection refused");
        assert_eq!(f.exit_code, Some(UNREACHABLE_EXIT_CODE));
        let lost = RemoteError::new("web13", ErrorKind::ConnectionLost, "connection lost: eof");
        assert_eq!(lost.to_failure().exit_code, Some(UNREACHABLE_EXIT_CODE));
        let refused = RemoteError::new("web13", ErrorKind::Auth, "no identity accepted");
        assert_eq!(refused.to_failure().exit_code, None);
        assert!(!ErrorKind::ChangedHostKey.is_unreachable());
    }
}
