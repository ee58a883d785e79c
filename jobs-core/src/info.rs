//! `JobInfo`: the serializable snapshot of one job.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{shell_quote, JobState, SharedStr};

/// A program's arguments as a command line a POSIX shell reads back the
/// same way: how a job started from an argv shows its command.
pub fn command_line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A job's id: a small integer, per session, counting from 1.
pub type JobId = u64;

/// A snapshot of one job, as `list`/`show` print it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// Per-session id, from 1.
    pub id: JobId,
    /// Globally unique id.
    pub instance_id: Uuid,
    /// The job's name (default `Job<id>`).
    pub name: SharedStr,
    /// The executor's type name (`BackgroundJob`, `ThreadJob`, ...).
    #[serde(rename = "type")]
    pub type_name: SharedStr,
    /// The current state.
    pub state: JobState,
    /// Why the job failed (or was stopped abnormally), if it did.
    pub reason: Option<String>,
    /// Whether the job can still produce records or holds unreceived ones.
    pub has_more_data: bool,
    /// Where the job runs: `localhost`, a host, or an executor's own word.
    pub location: SharedStr,
    /// The command as the user wrote it.
    pub command: SharedStr,
    /// When the job first ran.
    #[serde(with = "opt_time")]
    pub begin: Option<SystemTime>,
    /// When the job finished.
    #[serde(with = "opt_time")]
    pub end: Option<SystemTime>,
    /// The exit code, where there is one.
    pub exit_code: Option<i32>,
    /// The parent job, for a child job.
    pub parent: Option<JobId>,
    /// The child jobs, in the order they were opened.
    pub children: Vec<JobId>,
    /// Whether the job outlives its session.
    #[serde(default)]
    pub detached: bool,
    /// The input item of a batch's child job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// How many times the job's work was started (more than 1 after
    /// retries; 0 while it waits).
    #[serde(default)]
    pub attempts: u32,
    /// The jobs this one waits for: it starts once they all ended
    /// Completed (see [`JobSpec::after`](crate::JobSpec::after)).
    #[serde(default)]
    pub after: Vec<JobId>,
    /// The jobs this one waits for whatever their outcome (see
    /// [`JobSpec::after_any`](crate::JobSpec::after_any)).
    #[serde(default)]
    pub after_any: Vec<JobId>,
    /// The job this one was restarted from (`jobctl restart`): a new job
    /// made from that job's stored spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_from: Option<JobId>,
}

impl JobInfo {
    /// Whether the job waits (or waited) for other jobs.
    pub fn has_dependencies(&self) -> bool {
        !self.after.is_empty() || !self.after_any.is_empty()
    }
}

/// RFC 3339 (UTC) for optional times.
mod opt_time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&humantime::format_rfc3339_micros(*t).to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| humantime::parse_rfc3339(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_what_a_shell_would_split() {
        assert_eq!(
            command_line(&["echo", "a b", "it's", ""]),
            r"echo 'a b' 'it'\''s' ''"
        );
        assert_eq!(command_line(&["ls", "-l", "/tmp"]), "ls -l /tmp");
    }

    #[test]
    fn json_uses_type_and_rfc3339() {
        let info = JobInfo {
            id: 3,
            instance_id: Uuid::nil(),
            name: "Job3".into(),
            type_name: "BackgroundJob".into(),
            state: JobState::Completed,
            reason: None,
            has_more_data: false,
            location: "localhost".into(),
            command: "true".into(),
            begin: Some(SystemTime::UNIX_EPOCH),
            end: None,
            exit_code: Some(0),
            parent: None,
            children: vec![],
            detached: false,
            item: None,
            attempts: 0,
            after: vec![1, 2],
            after_any: vec![],
            restarted_from: None,
        };
        let v = serde_json::to_value(&info).expect("ser");
        assert_eq!(v["type"], "BackgroundJob");
        assert_eq!(v["state"], "Completed");
        assert_eq!(v["begin"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["after"], serde_json::json!([1, 2]));
        assert_eq!(v["after_any"], serde_json::json!([]));
        let back: JobInfo = serde_json::from_value(v.clone()).expect("de");
        assert_eq!(back, info);
        // A row written before jobs had dependencies still loads.
        let mut old = v;
        if let Some(m) = old.as_object_mut() {
            m.remove("after");
            m.remove("after_any");
        }
        let back: JobInfo = serde_json::from_value(old).expect("old row");
        assert!(back.after.is_empty() && back.after_any.is_empty());
    }
}
