//! Where a jobctl session keeps its state on this machine: one rule for
//! every crate that needs it (the command and its daemon, the process
//! executor's detached jobs, plugins with files of their own).

use std::path::PathBuf;

/// The session's state directory: `$JOBCTL_HOME`, else
/// `$XDG_STATE_HOME/jobctl`, else `$HOME/.local/state/jobctl`; `None` when
/// none of them is set. Empty variables count as unset. A relative
/// `$JOBCTL_HOME` is returned as it is (relative to the caller's directory).
///
/// ```
/// // With JOBCTL_HOME set, it is the answer.
/// std::env::set_var("JOBCTL_HOME", "/tmp/my-session");
/// assert_eq!(jobs_core::state_dir(), Some("/tmp/my-session".into()));
/// ```
pub fn state_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(home) = var("JOBCTL_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(state) = var("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("jobctl"));
    }
    var("HOME").map(|h| PathBuf::from(h).join(".local/state/jobctl"))
}
