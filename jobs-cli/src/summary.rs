//! The closing summary of a parent's children, on stderr after `run` and
//! `receive --wait`: `18 ok, 1 failed (web07: exited with status 2),
//! 1 unreachable (web13)`.
//!
//! A child is unreachable when its host could not be reached or stopped
//! answering: the remote executor fails such a child with ssh's exit code
//! 255 and a reason naming the cause, where a command that itself exits
//! 255 has the reason `exited with status 255`. Hosts (and batch items)
//! are folded into patterns (`web[07-09]`); failures are grouped by reason.

use jobs_core::{JobFailure, JobInfo, JobState};
use jobs_hostlist::fold;

/// The exit code of a child whose host was unreachable (jobs-remote's
/// `UNREACHABLE_EXIT_CODE`; `jobctl` does not link the SSH executor).
const UNREACHABLE_EXIT_CODE: i32 = 255;

/// At most this many distinct reasons are shown; the rest are counted.
const MAX_REASONS: usize = 5;

/// What names a child in a summary, a `--tag` prefix or a `--gather`
/// header: its host for a remote child, its item for a batch's, else its
/// name.
pub(crate) fn label(child: &JobInfo) -> String {
    if let Some(item) = &child.item {
        return item.clone();
    }
    if child.type_name == "RemoteJob" && !child.location.is_empty() {
        return child.location.to_string();
    }
    child.name.to_string()
}

/// Whether a remote child failed because its host was unreachable.
fn unreachable(child: &JobInfo) -> bool {
    child.state == JobState::Failed
        && child.exit_code == Some(UNREACHABLE_EXIT_CODE)
        && child.reason.as_deref()
            != Some(JobFailure::exited(UNREACHABLE_EXIT_CODE).reason.as_str())
}

/// The summary of a parent with more than one child; `None` for fewer.
pub(crate) fn line(children: &[JobInfo]) -> Option<String> {
    if children.len() < 2 {
        return None;
    }
    let mut ok = 0usize;
    // (reason, labels), in the order reasons first appear.
    let mut failed: Vec<(String, Vec<String>)> = Vec::new();
    let mut failed_count = 0usize;
    let mut down = Vec::new();
    let mut stopped = Vec::new();
    let mut other = Vec::new();
    for c in children {
        let name = label(c);
        match c.state {
            JobState::Completed => ok += 1,
            JobState::Failed if unreachable(c) => down.push(name),
            JobState::Failed => {
                failed_count += 1;
                let reason = c.reason.as_deref().unwrap_or("failed");
                // A remote reason names its host; the label already does.
                let reason = reason
                    .strip_prefix(&format!("host {}: ", c.location))
                    .unwrap_or(reason)
                    .to_string();
                match failed.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, names)) => names.push(name),
                    None => failed.push((reason, vec![name])),
                }
            }
            JobState::Stopped => stopped.push(name),
            _ => other.push(name),
        }
    }
    let mut parts = vec![format!("{ok} ok")];
    if failed_count > 0 {
        let mut reasons: Vec<String> = failed
            .iter()
            .take(MAX_REASONS)
            .map(|(reason, names)| format!("{}: {reason}", fold(names)))
            .collect();
        if failed.len() > MAX_REASONS {
            reasons.push(format!("{} more reasons", failed.len() - MAX_REASONS));
        }
        parts.push(format!("{failed_count} failed ({})", reasons.join("; ")));
    }
    for (names, word) in [
        (&down, "unreachable"),
        (&stopped, "stopped"),
        (&other, "not finished"),
    ] {
        if !names.is_empty() {
            parts.push(format!("{} {word} ({})", names.len(), fold(names)));
        }
    }
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(host: &str, state: JobState, reason: Option<&str>, code: Option<i32>) -> JobInfo {
        JobInfo {
            id: 1,
            instance_id: Default::default(),
            name: "Job1".into(),
            type_name: "RemoteJob".into(),
            state,
            reason: reason.map(str::to_string),
            has_more_data: false,
            location: host.into(),
            command: "x".into(),
            begin: None,
            end: None,
            exit_code: code,
            parent: Some(0),
            children: vec![],
            detached: false,
            item: None,
            attempts: 1,
            after: Vec::new(),
            after_any: Vec::new(),
            restarted_from: None,
        }
    }

    #[test]
    fn ok_failed_and_unreachable_hosts_folded() {
        let mut kids: Vec<JobInfo> = (1..=20)
            .filter(|n| ![7, 13].contains(n))
            .map(|n| child(&format!("web{n:02}"), JobState::Completed, None, Some(0)))
            .collect();
        kids.push(child(
            "web07",
            JobState::Failed,
            Some("exited with status 2"),
            Some(2),
        ));
        kids.push(child(
            "web13",
            JobState::Failed,
            Some("host web13: cannot connect: connection refused"),
            Some(255),
        ));
        assert_eq!(
            line(&kids).as_deref(),
            Some("18 ok, 1 failed (web07: exited with status 2), 1 unreachable (web13)")
        );
    }

    #[test]
    fn reasons_group_hosts_and_a_command_s_own_255_is_a_failure() {
        let kids = [
            child(
                "h1",
                JobState::Failed,
                Some("exited with status 255"),
                Some(255),
            ),
            child(
                "h2",
                JobState::Failed,
                Some("exited with status 255"),
                Some(255),
            ),
            child(
                "h3",
                JobState::Failed,
                Some("host h3: the server refused every identity"),
                None,
            ),
            child("h4", JobState::Stopped, None, None),
        ];
        assert_eq!(
            line(&kids).as_deref(),
            Some("0 ok, 3 failed (h[1-2]: exited with status 255; h3: the server refused every identity), 1 stopped (h4)")
        );
        assert_eq!(line(&kids[..1]), None);
    }

    #[test]
    fn batch_children_are_named_by_their_item() {
        let mut a = child("localhost", JobState::Completed, None, Some(0));
        a.type_name = "BackgroundJob".into();
        a.item = Some("a.flac".into());
        let mut b = a.clone();
        b.item = Some("b.flac".into());
        b.state = JobState::Failed;
        b.reason = Some("exited with status 1".into());
        assert_eq!(
            line(&[a, b]).as_deref(),
            Some("1 ok, 1 failed (b.flac: exited with status 1)")
        );
    }
}
