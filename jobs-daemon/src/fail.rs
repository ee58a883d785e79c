//! A request that failed: its kind (which decides the client's exit code)
//! and the one line the user reads.

use jobs_protocol::ErrorCode;

/// A failed request: what kind of failure, and the message for the user.
#[derive(Debug)]
pub(crate) struct Fail {
    /// The kind (decides the client's exit code).
    pub kind: ErrorCode,
    /// One line.
    pub message: String,
}

impl Fail {
    /// A failure of a kind.
    pub(crate) fn new(kind: ErrorCode, message: impl Into<String>) -> Self {
        Fail {
            kind,
            message: message.into(),
        }
    }
}

impl From<jobs_core::Error> for Fail {
    fn from(e: jobs_core::Error) -> Self {
        use jobs_core::ErrorKind as K;
        let kind = match e.kind() {
            K::NoSuchJob => ErrorCode::NoSuchJob,
            K::InvalidInput => ErrorCode::Usage,
            _ => ErrorCode::Failed,
        };
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        Fail { kind, message }
    }
}
