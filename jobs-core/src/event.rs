//! State-change events: what [`crate::Session::subscribe`] hands out and
//! what `jobctl events` prints.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::info::JobId;
use crate::state::JobState;

/// One state change of one job of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Session-wide sequence number: only grows, never repeats, survives a
    /// daemon restart.
    pub seq: u64,
    /// When the change happened.
    #[serde(with = "time_serde")]
    pub time: SystemTime,
    /// The job.
    pub id: JobId,
    /// The job's name.
    pub name: String,
    /// The job's type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The state before, or none for the job's creation.
    pub from: Option<JobState>,
    /// The state after. `None` when the job was removed from the table.
    pub to: Option<JobState>,
    /// The reason, where there is one (failed, stopped abnormally).
    #[serde(default)]
    pub reason: Option<String>,
    /// The exit code, where there is one.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// RFC 3339 (UTC) times.
mod time_serde {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_micros(*t).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}
