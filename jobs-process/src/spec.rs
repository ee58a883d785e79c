//! `ProcessSpec`: what a BackgroundJob runs, as it travels in `JobSpec::params`.

use std::ffi::OsString;
use std::path::PathBuf;

use jobs_core::JobSpec;
use serde::{Deserialize, Serialize};

/// The type name of process jobs, as `list` shows it.
pub const TYPE_NAME: &str = "BackgroundJob";

/// What to start: a program with its arguments (no shell involved), or a
/// shell line run by `/bin/sh -c`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// The argv: the program (looked up in `PATH` unless it has a `/`) and
    /// its arguments, passed as they are, byte for byte.
    Program(#[serde(with = "jobs_core::os_serde::strings")] Vec<OsString>),
    /// A line for `/bin/sh -c`.
    Shell(#[serde(with = "jobs_core::os_serde::string")] OsString),
}

/// A process job: the command, its working directory and environment, and
/// whether it outlives its session.
///
/// It serializes flat, e.g. `{"program": ["ls", "-l"], "cwd": "/tmp",
/// "env_clear": true, "env": [["PATH", "/bin"]], "detached": false}` or
/// `{"shell": "make | tee log"}`; every field but the command has a default.
/// Arguments, the directory and variables are OS strings, carried byte for
/// byte: one that is not UTF-8 is written as an array of its bytes (see
/// [`jobs_core::os_serde`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// What to run.
    #[serde(flatten)]
    pub command: Command,
    /// The working directory (default: the session host's).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "jobs_core::os_serde::opt_path"
    )]
    pub cwd: Option<PathBuf>,
    /// Start from an empty environment instead of the session host's.
    #[serde(default)]
    pub env_clear: bool,
    /// Variables set on top, in order (a later one wins).
    #[serde(default, with = "jobs_core::os_serde::pairs")]
    pub env: Vec<(OsString, OsString)>,
    /// Whether the job outlives its session (output goes to files).
    #[serde(default)]
    pub detached: bool,
    /// Bytes written to the process's standard input, which is then closed
    /// (default: stdin is `/dev/null`). Unlike an argument, they have no
    /// size limit of the OS and do not show in the process table.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "jobs_core::os_serde::opt_string"
    )]
    pub stdin: Option<OsString>,
}

/// The error of reading a [`ProcessSpec`] from a job's params.
#[derive(Debug, thiserror::Error)]
#[error("invalid process job parameters")]
pub struct SpecError(#[from] serde_json::Error);

impl ProcessSpec {
    /// Runs `argv[0]` with the rest as arguments.
    pub fn program<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self::with(Command::Program(argv.into_iter().map(Into::into).collect()))
    }

    /// Runs `line` with `/bin/sh -c`.
    pub fn shell(line: impl Into<OsString>) -> Self {
        Self::with(Command::Shell(line.into()))
    }

    fn with(command: Command) -> Self {
        ProcessSpec {
            command,
            cwd: None,
            env_clear: false,
            env: Vec::new(),
            detached: false,
            stdin: None,
        }
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Adds one environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts from an empty environment (`true`) or the host's (`false`).
    pub fn env_clear(mut self, clear: bool) -> Self {
        self.env_clear = clear;
        self
    }

    /// Marks the job detached.
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// Gives the process `bytes` on its standard input.
    pub fn stdin(mut self, bytes: impl Into<OsString>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The argv actually executed: the program's, or `/bin/sh -c LINE`.
    pub fn argv(&self) -> Vec<OsString> {
        match &self.command {
            Command::Program(argv) => argv.clone(),
            Command::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
        }
    }

    /// The command as a user reads it: the shell line, or the argv joined
    /// with shell quoting where an argument needs it.
    /// Bytes that are not UTF-8 show as U+FFFD; the job runs with them as
    /// they are.
    pub fn display(&self) -> String {
        match &self.command {
            Command::Shell(line) => line.to_string_lossy().into_owned(),
            Command::Program(argv) => {
                let words: Vec<std::borrow::Cow<'_, str>> =
                    argv.iter().map(|a| a.to_string_lossy()).collect();
                jobs_core::command_line(&words)
            }
        }
    }

    /// Reads a spec from a job's params (the JSON form of a spec, as
    /// [`ProcessSpec::to_params`] writes it).
    pub fn from_params(params: &serde_json::Value) -> Result<Self, SpecError> {
        Ok(Self::deserialize(params)?)
    }

    /// The spec's JSON form, for a [`JobSpec`] built by hand or sent where
    /// only JSON goes.
    pub fn to_params(&self) -> serde_json::Value {
        // A struct of strings, paths and bools always serializes.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A [`JobSpec`] of type [`TYPE_NAME`] that carries this spec as its
    /// payload (typed, with no JSON round trip), the display form as its
    /// command and its `detached` flag. The executor also takes a spec from
    /// the params when there is no payload.
    pub fn into_job_spec(self) -> JobSpec {
        let command = self.display();
        let detached = self.detached;
        JobSpec::new(TYPE_NAME, command)
            .payload(Box::new(self))
            .detached(detached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_flat_and_round_trips() {
        let spec = ProcessSpec::program(["ls", "-l"])
            .cwd("/tmp")
            .env("A", "1")
            .env_clear(true);
        let v = serde_json::to_value(&spec).expect("ser");
        assert_eq!(v["program"], serde_json::json!(["ls", "-l"]));
        assert_eq!(v["env"], serde_json::json!([["A", "1"]]));
        assert_eq!(ProcessSpec::from_params(&v).expect("de"), spec);
        let sh = ProcessSpec::from_params(&serde_json::json!({"shell": "echo hi"})).expect("de");
        assert_eq!(sh.argv(), ["/bin/sh", "-c", "echo hi"]);
        assert!(!sh.detached && !sh.env_clear && sh.env.is_empty());
        assert!(ProcessSpec::from_params(&serde_json::json!({"cwd": "/"})).is_err());
    }

    #[test]
    fn display_quotes_what_needs_it() {
        let spec = ProcessSpec::program(["printf", "%s\n", "it's", ""]);
        assert_eq!(
            spec.display(),
            r"printf '%s
' 'it'\''s' ''"
        );
        let job = ProcessSpec::shell("a | b").detached(true).into_job_spec();
        assert_eq!(job.command, "a | b");
        assert_eq!(job.type_name, TYPE_NAME);
        assert!(job.detached);
    }
}
