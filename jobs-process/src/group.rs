//! Process groups: signalling a job's whole tree, telling whether any of it
//! is still alive, and naming signals.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::runtime::Handle;

/// How often a terminating group is looked at.
const POLL: Duration = Duration::from_millis(10);
/// How long to wait for a SIGKILLed group to disappear.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Sends `signal` to every process of the group; a group that is already
/// gone is not an error.
pub(crate) fn signal_group(pgid: i32, signal: Signal) {
    // ESRCH (no such group) is the expected outcome once the job is gone;
    // EPERM cannot happen for a group we created.
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Whether any process of the group is alive. Zombies do not count: a
/// killed process can stay a zombie for a while until its parent (often
/// PID 1) reaps it, but it runs no code and holds no pipe.
pub(crate) fn group_alive(pgid: i32) -> bool {
    // Fast path: no process at all, not even a zombie, carries the group id.
    if killpg(Pid::from_raw(pgid), None) == Err(Errno::ESRCH) {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            return false;
        };
        proc_stat(pid).is_some_and(|st| st.pgrp == pgid && !st.gone())
    })
}

/// The fields of `/proc/PID/stat` this crate uses.
pub(crate) struct ProcStat {
    /// One-letter state (`R`, `S`, `Z`, ...).
    pub(crate) state: char,
    /// Process group id.
    pub(crate) pgrp: i32,
    /// Start time in clock ticks after boot: tells a process from a later
    /// one that reuses its pid.
    pub(crate) start_time: u64,
}

impl ProcStat {
    /// Whether the process has ended (a zombie or dead).
    pub(crate) fn gone(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/PID/stat`; `None` if there is no such process.
pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: the fields we want follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) ... starttime(22).
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Ends a group: SIGTERM, then SIGKILL to what is left after `grace`.
/// Returns once no process of the group is alive (or a SIGKILLed one did not
/// disappear within a few seconds); `true` if SIGKILL was needed.
pub(crate) async fn terminate_group(io: &Handle, pgid: i32, grace: Duration) -> bool {
    terminate_group_with(io, pgid, Signal::SIGTERM, grace).await
}

/// How a stop ends a job's group: the stop's own first signal and grace
/// (`jobctl stop --signal --grace`), else SIGTERM and the executor's grace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ending {
    /// The first signal.
    pub(crate) signal: Signal,
    /// The time between it and SIGKILL.
    pub(crate) grace: Duration,
}

impl Ending {
    /// The ending a stop with `options` asks for; `grace` is the executor's.
    pub(crate) fn of(options: jobs_core::StopOptions, grace: Duration) -> Self {
        Ending {
            signal: options
                .signal
                .and_then(|n| Signal::try_from(n).ok())
                .unwrap_or(Signal::SIGTERM),
            grace: options.grace.unwrap_or(grace),
        }
    }

    /// Ends the group this way; `true` if SIGKILL was needed.
    pub(crate) async fn terminate(self, io: &Handle, pgid: i32) -> bool {
        terminate_group_with(io, pgid, self.signal, self.grace).await
    }

    /// The reason of a job this ending had to kill.
    pub(crate) fn killed(self) -> jobs_core::JobFailure {
        jobs_core::JobFailure::new(format!(
            "did not end within {} of {}: killed with SIGKILL",
            humanize(self.grace),
            self.signal.as_str()
        ))
    }
}

/// [`terminate_group`] with another first signal than SIGTERM.
pub(crate) async fn terminate_group_with(
    io: &Handle,
    pgid: i32,
    first: Signal,
    grace: Duration,
) -> bool {
    signal_group(pgid, first);
    // A stopped process (SIGSTOP, SIGTSTP) only acts on SIGTERM once continued.
    signal_group(pgid, Signal::SIGCONT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !group_alive(pgid) {
            return false;
        }
        sleep(io, POLL).await;
    }
    signal_group(pgid, Signal::SIGKILL);
    let deadline = Instant::now() + KILL_WAIT;
    while group_alive(pgid) && Instant::now() < deadline {
        sleep(io, POLL).await;
    }
    true
}

/// A duration as a stop's reason shows it: `5s`, `1500ms`.
pub(crate) fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A tokio sleep on the executor's own runtime (whose timer always runs,
/// whatever runtime polls the future).
pub(crate) fn sleep(io: &Handle, d: Duration) -> tokio::time::Sleep {
    let _g = io.enter();
    tokio::time::sleep(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat() {
        let st = proc_stat(std::process::id()).expect("own stat");
        assert!(!st.gone());
        assert!(st.start_time > 0);
        assert_eq!(st.pgrp, nix::unistd::getpgrp().as_raw());
    }
}
