//! A Slurm job's state as the tools print it, and what it means for the
//! job: still queued, running, or ended (and how).

use std::collections::HashMap;

/// One job as `squeue` or `sacct` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlurmStatus {
    /// Slurm's state name (`PENDING`, `RUNNING`, `FAILED`, ...).
    pub(crate) state: String,
    /// Slurm's reason field (`Resources`, `NonZeroExitCode`, ...); empty
    /// when Slurm gives none.
    pub(crate) reason: String,
    /// The node(s) it runs or ran on; empty while pending.
    pub(crate) nodes: String,
    /// The batch script's end, where known.
    pub(crate) exit: Option<Exit>,
}

/// How the batch script ended: an exit code, or a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exit {
    /// The exit code (0 when killed by a signal).
    pub(crate) code: i32,
    /// The signal that killed it, if any.
    pub(crate) signal: i32,
}

impl Exit {
    /// From a raw wait status (`squeue`'s `exit_code`: 768 is exit 3).
    fn from_wait_status(raw: i32) -> Exit {
        Exit {
            code: (raw >> 8) & 0xff,
            signal: raw & 0x7f,
        }
    }

    /// From `sacct`'s `CODE:SIGNAL`.
    fn from_pair(text: &str) -> Option<Exit> {
        let (code, signal) = text.split_once(':')?;
        Some(Exit {
            code: code.trim().parse().ok()?,
            signal: signal.trim().parse().ok()?,
        })
    }
}

/// Where a Slurm state puts the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting in Slurm's queue.
    Queued,
    /// Running, or in a state that will move on by itself.
    Running,
    /// Ended well.
    Completed,
    /// Cancelled (`scancel`).
    Cancelled,
    /// Ended badly: the state names how.
    Failed,
}

impl SlurmStatus {
    /// The phase of this state. Unknown states count as running: the job
    /// is followed until Slurm names an end.
    pub(crate) fn phase(&self) -> Phase {
        match self.state.as_str() {
            "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" => {
                Phase::Queued
            }
            "COMPLETED" => Phase::Completed,
            "CANCELLED" => Phase::Cancelled,
            "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL"
            | "DEADLINE" | "SPECIAL_EXIT" | "REVOKED" => Phase::Failed,
            _ => Phase::Running,
        }
    }

    /// Slurm's reason, when it says something.
    pub(crate) fn reason(&self) -> Option<&str> {
        match self.reason.as_str() {
            "" | "None" | "(null)" => None,
            r => Some(r),
        }
    }

    /// The node list, when there is one.
    pub(crate) fn nodes(&self) -> Option<&str> {
        match self.nodes.as_str() {
            "" | "None" | "(null)" | "None assigned" => None,
            n => Some(n),
        }
    }

    /// One line for the user: `FAILED, exit code 3, Slurm reason
    /// NonZeroExitCode`.
    pub(crate) fn describe(&self) -> String {
        let mut s = self.state.clone();
        if let Some(exit) = self.exit {
            if exit.signal != 0 {
                let killed = jobs_core::JobFailure::signaled(exit.signal);
                s.push_str(&format!(", {killed}"));
            } else {
                s.push_str(&format!(", exit code {}", exit.code));
            }
        }
        if let Some(r) = self.reason() {
            s.push_str(&format!(", Slurm reason {r}"));
        }
        s
    }
}

/// Parses `squeue --Format JobID:|,State:|,Reason:|,NodeList:|,exit_code:|`.
pub(crate) fn parse_squeue(out: &str) -> HashMap<String, SlurmStatus> {
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('|').map(str::trim).collect();
            let [id, state, reason, nodes, exit, ..] = f.as_slice() else {
                return None;
            };
            let exit = exit.parse::<i32>().ok().map(Exit::from_wait_status);
            Some((
                id.to_string(),
                SlurmStatus {
                    state: first_word(state),
                    reason: reason.to_string(),
                    nodes: nodes.to_string(),
                    exit,
                },
            ))
        })
        .collect()
}

/// Parses `sacct --parsable2 --format JobID,State,ExitCode,NodeList,Reason`.
pub(crate) fn parse_sacct(out: &str) -> HashMap<String, SlurmStatus> {
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('|').map(str::trim).collect();
            let [id, state, exit, nodes, rest @ ..] = f.as_slice() else {
                return None;
            };
            Some((
                id.to_string(),
                SlurmStatus {
                    // `CANCELLED by 1000` names the user who cancelled.
                    state: first_word(state),
                    reason: rest.first().map(|r| r.to_string()).unwrap_or_default(),
                    nodes: nodes.to_string(),
                    exit: Exit::from_pair(exit),
                },
            ))
        })
        .collect()
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse() {
        let got = parse_squeue(
            "1|FAILED|NonZeroExitCode|localhost|768|\n2|PENDING|Resources||0|\n3|CANCELLED|None|n[1-2]|36608|\n",
        );
        let one = &got["1"];
        assert_eq!(one.phase(), Phase::Failed);
        assert_eq!(one.exit, Some(Exit { code: 3, signal: 0 }));
        assert_eq!(
            one.describe(),
            "FAILED, exit code 3, Slurm reason NonZeroExitCode"
        );
        assert_eq!(got["2"].phase(), Phase::Queued);
        assert_eq!(got["2"].nodes(), None);
        assert_eq!(got["3"].phase(), Phase::Cancelled);
        assert_eq!(got["3"].nodes(), Some("n[1-2]"));
        assert_eq!(got["3"].reason(), None);
    }

    #[test]
    fn sacct_lines_parse() {
        let got = parse_sacct("7|TIMEOUT|0:15|localhost|\n8|CANCELLED by 0|0:0|localhost|\n");
        assert_eq!(got["7"].phase(), Phase::Failed);
        assert_eq!(
            got["7"].describe(),
            "TIMEOUT, killed by signal 15 (SIGTERM)"
        );
        assert_eq!(got["8"].state, "CANCELLED");
    }

    #[test]
    fn every_named_state_has_its_phase() {
        let st = |s: &str| SlurmStatus {
            state: s.into(),
            reason: String::new(),
            nodes: String::new(),
            exit: None,
        };
        for s in ["RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED"] {
            assert_eq!(st(s).phase(), Phase::Running, "{s}");
        }
        for s in [
            "FAILED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
        ] {
            assert_eq!(st(s).phase(), Phase::Failed, "{s}");
        }
        assert_eq!(st("COMPLETED").phase(), Phase::Completed);
    }
}
