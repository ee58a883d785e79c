//! `JobFailure`: why a job failed, spelled one way for every executor.

use std::any::Any;
use std::fmt;

/// Why a job failed: the reason shown to the user, and an exit code if the
/// work had one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    /// The reason, one line, shown as the job's `reason`.
    pub reason: String,
    /// The exit code, where there is one.
    pub exit_code: Option<i32>,
}

impl JobFailure {
    /// A failure with a reason and no exit code.
    pub fn new(reason: impl Into<String>) -> Self {
        JobFailure {
            reason: reason.into(),
            exit_code: None,
        }
    }

    /// A failure whose reason is an error and its causes on one line
    /// (`what failed: why: why`).
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        JobFailure::new(crate::error::chain(error))
    }

    /// A process that exited with a non-zero status: `exited with status 3`,
    /// with that exit code.
    pub fn exited(code: i32) -> Self {
        JobFailure::with_exit_code(format!("exited with status {code}"), code)
    }

    /// A process killed by a signal: `killed by signal 9 (SIGKILL)`, or
    /// without the name for a signal this platform does not know.
    pub fn signaled(sig: i32) -> Self {
        JobFailure::new(match crate::signal::signal_name(sig) {
            Some(name) => format!("killed by signal {sig} ({name})"),
            None => format!("killed by signal {sig}"),
        })
    }

    /// Work that panicked, from the panic's payload: `panicked: MESSAGE`.
    pub fn panicked(payload: &(dyn Any + Send)) -> Self {
        JobFailure::new(format!("panicked: {}", panic_message(payload)))
    }

    /// The same failure with a detail after its reason (`REASON: DETAIL`),
    /// such as the last line a process wrote to stderr.
    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.reason = format!("{}: {detail}", self.reason);
        self
    }

    /// A failure with a reason and an exit code.
    pub fn with_exit_code(reason: impl Into<String>, code: i32) -> Self {
        JobFailure {
            reason: reason.into(),
            exit_code: Some(code),
        }
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl From<String> for JobFailure {
    fn from(reason: String) -> Self {
        JobFailure::new(reason)
    }
}

impl From<&str> for JobFailure {
    fn from(reason: &str) -> Self {
        JobFailure::new(reason)
    }
}

/// The message of a panic's payload (`panic!("...")` gives a `&str` or a
/// `String`), for reasons such as `panicked: MESSAGE`.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::JobFailure;

    #[test]
    fn reasons_are_spelled_one_way() {
        let exited = JobFailure::exited(3);
        assert_eq!(
            (exited.reason.as_str(), exited.exit_code),
            ("exited with status 3", Some(3))
        );
        assert_eq!(
            JobFailure::signaled(9).reason,
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            JobFailure::signaled(15).reason,
            "killed by signal 15 (SIGTERM)"
        );
        assert_eq!(JobFailure::signaled(1000).reason, "killed by signal 1000");
        assert_eq!(JobFailure::panicked(&"boom").reason, "panicked: boom");
        assert_eq!(
            JobFailure::exited(2).with_detail("no such file").reason,
            "exited with status 2: no such file"
        );
    }
}
