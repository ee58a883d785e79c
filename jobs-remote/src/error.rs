//! The error of running on one host: which host, what kind of problem, and
//! a message that becomes the child job's reason.

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
