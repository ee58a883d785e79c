//! Job states and the one place where transitions between them are checked.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a job, with PowerShell's names.
///
/// A job starts `NotStarted` (queued behind a throttle, or not yet launched),
/// becomes `Running`, and ends in one of the three *finished* states:
/// `Completed`, `Failed` or `Stopped`. `Blocked` (waiting for input),
/// `Suspending`/`Suspended` and `Disconnected` (a remote peer is out of
/// reach) are excursions from `Running`. `Stopping` is the short time between
/// a stop request and the job's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum JobState {
    /// Created, not yet running (queued behind a throttle, or starting).
    NotStarted,
    /// Running.
    Running,
    /// Running, but waiting for something only the user can give.
    Blocked,
    /// Being suspended.
    Suspending,
    /// Suspended; will run again when resumed.
    Suspended,
    /// A stop was requested; the job is ending.
    Stopping,
    /// Ended by a stop request. Finished.
    Stopped,
    /// Ended successfully. Finished.
    Completed,
    /// Ended with an error; the job's reason says why. Finished.
    Failed,
    /// The connection to where the job runs is lost for now.
    Disconnected,
}

impl JobState {
    /// Every state, in declaration order.
    pub const ALL: [JobState; 10] = [
        JobState::NotStarted,
        JobState::Running,
        JobState::Blocked,
        JobState::Suspending,
        JobState::Suspended,
        JobState::Stopping,
        JobState::Stopped,
        JobState::Completed,
        JobState::Failed,
        JobState::Disconnected,
    ];

    /// `Completed`, `Failed` or `Stopped`: the job will never change again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Stopped
        )
    }

    /// Finished, or paused in a state only an outside event ends
    /// (`Blocked`, `Suspended`, `Disconnected`): what `wait` waits for.
    pub fn is_done_for_wait(self) -> bool {
        self.is_finished()
            || matches!(
                self,
                JobState::Blocked | JobState::Suspended | JobState::Disconnected
            )
    }

    /// Whether a job in `self` may move to `next`. This table is the only
    /// definition of the lifecycle; the session refuses any other move.
    pub fn can_transition_to(self, next: JobState) -> bool {
        use JobState::*;
        match self {
            NotStarted => matches!(next, Running | Stopped | Failed),
            Running => matches!(
                next,
                Blocked | Suspending | Stopping | Stopped | Completed | Failed | Disconnected
            ),
            Blocked => matches!(next, Running | Stopping | Stopped | Completed | Failed),
            Suspending => matches!(next, Suspended | Running | Stopping | Failed),
            Suspended => matches!(next, Running | Stopping | Stopped | Failed),
            Stopping => matches!(next, Stopped | Failed),
            Disconnected => matches!(next, Running | Stopping | Stopped | Completed | Failed),
            Stopped | Completed | Failed => false,
        }
    }

    /// The state's name as PowerShell prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::NotStarted => "NotStarted",
            JobState::Running => "Running",
            JobState::Blocked => "Blocked",
            JobState::Suspending => "Suspending",
            JobState::Suspended => "Suspended",
            JobState::Stopping => "Stopping",
            JobState::Stopped => "Stopped",
            JobState::Completed => "Completed",
            JobState::Failed => "Failed",
            JobState::Disconnected => "Disconnected",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The error of parsing a state name that is none of the ten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state '{0}' (expected one of NotStarted, Running, Blocked, Suspending, Suspended, Stopping, Stopped, Completed, Failed, Disconnected)")]
pub struct ParseStateError(pub String);

impl FromStr for JobState {
    type Err = ParseStateError;

    /// Parses a state name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseStateError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_states_are_terminal() {
        for from in JobState::ALL.into_iter().filter(|s| s.is_finished()) {
            for to in JobState::ALL {
                assert!(!from.can_transition_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn lifecycle_edges() {
        use JobState::*;
        assert!(NotStarted.can_transition_to(Running));
        assert!(NotStarted.can_transition_to(Stopped));
        assert!(!NotStarted.can_transition_to(Completed));
        assert!(Running.can_transition_to(Blocked));
        assert!(Blocked.can_transition_to(Running));
        assert!(Running.can_transition_to(Stopping));
        assert!(Stopping.can_transition_to(Stopped));
        assert!(!Stopping.can_transition_to(Completed));
        assert!(!Stopping.can_transition_to(Running));
        assert!(Running.can_transition_to(Disconnected));
        assert!(Disconnected.can_transition_to(Running));
        assert!(Suspending.can_transition_to(Suspended));
        assert!(!Running.can_transition_to(NotStarted));
    }

    #[test]
    fn parse_ignores_case_and_round_trips() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().to_lowercase().parse::<JobState>(), Ok(s));
        }
        assert!("Runing".parse::<JobState>().is_err());
    }
}
