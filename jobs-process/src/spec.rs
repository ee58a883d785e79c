//! `ProcessSpec`: what a BackgroundJob runs, as it travels in `JobSpec::params`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    #[serde(default)]
    pub env: Env,
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

/// A process's variables, in order (a later one wins), shared by the specs
/// cloned from one another (the children of a batch hold one copy); it
/// serializes as an array of `[name, value]` pairs. It also remembers
/// where a program was last found on its `PATH`, so that children that
/// run the same program from the same directory look it up once.
#[derive(Clone, Default)]
pub struct Env(Arc<EnvVars>);

#[derive(Default)]
struct EnvVars {
    /// The variables, in order.
    vars: Vec<(OsString, OsString)>,
    /// The last lookup that found its program: its key and the path.
    found: Mutex<Option<(Lookup, PathBuf)>>,
}

impl Clone for EnvVars {
    fn clone(&self) -> Self {
        EnvVars {
            vars: self.vars.clone(),
            found: Mutex::new(None),
        }
    }
}

/// What a program lookup depends on besides the variables.
#[derive(PartialEq, Eq)]
struct Lookup {
    program: OsString,
    cwd: Option<PathBuf>,
    clear: bool,
}

impl Env {
    /// Adds one variable (copying the list if it is shared).
    pub fn push(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        self.vars_mut().push((key.into(), value.into()));
    }

    fn vars_mut(&mut self) -> &mut Vec<(OsString, OsString)> {
        let only = Arc::make_mut(&mut self.0);
        // A lookup made with other variables no longer holds.
        *only.found.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        &mut only.vars
    }

    /// Where `program` is for a process of these variables, from `cwd`,
    /// with (`clear`) or without the host's environment under them: the
    /// last path found if it was asked the same, else `look()`'s answer,
    /// kept if it is a path (a program not found is looked for again).
    pub(crate) fn found<E>(
        &self,
        program: &OsStr,
        cwd: Option<&Path>,
        clear: bool,
        look: impl FnOnce() -> Result<PathBuf, E>,
    ) -> Result<PathBuf, E> {
        let same = |key: &Lookup| {
            key.program == program && key.cwd.as_deref() == cwd && key.clear == clear
        };
        let mut found = self.0.found.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, path)) = found.as_ref().filter(|(key, _)| same(key)) {
            return Ok(path.clone());
        }
        let path = look()?;
        let key = Lookup {
            program: program.to_owned(),
            cwd: cwd.map(Path::to_path_buf),
            clear,
        };
        *found = Some((key, path.clone()));
        Ok(path)
    }
}

impl std::ops::Deref for Env {
    type Target = [(OsString, OsString)];

    fn deref(&self) -> &Self::Target {
        &self.0.vars
    }
}

impl From<Vec<(OsString, OsString)>> for Env {
    fn from(vars: Vec<(OsString, OsString)>) -> Self {
        Env(Arc::new(EnvVars {
            vars,
            found: Mutex::new(None),
        }))
    }
}

impl Extend<(OsString, OsString)> for Env {
    fn extend<I: IntoIterator<Item = (OsString, OsString)>>(&mut self, iter: I) {
        self.vars_mut().extend(iter);
    }
}

impl PartialEq for Env {
    fn eq(&self, other: &Self) -> bool {
        self.0.vars == other.0.vars
    }
}

impl Eq for Env {}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.vars.iter()).finish()
    }
}

impl Serialize for Env {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        jobs_core::os_serde::pairs::serialize(&self.0.vars, s)
    }
}

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        jobs_core::os_serde::pairs::deserialize(d).map(Env::from)
    }
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
            env: Env::default(),
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
        self.env.push(key, value);
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
    fn clones_share_one_variable_list_until_one_is_changed() {
        let a = ProcessSpec::program(["x"]).env("A", "1");
        let mut b = a.clone();
        assert!(std::ptr::eq(a.env.as_ptr(), b.env.as_ptr()));
        b.env.push("B", "2");
        assert_eq!(a.env.len(), 1);
        assert_eq!(b.env.len(), 2);
        assert_eq!(b.env[1], ("B".into(), "2".into()));
        let v = serde_json::to_value(&b).expect("ser");
        assert_eq!(v["env"], serde_json::json!([["A", "1"], ["B", "2"]]));
        assert_eq!(ProcessSpec::from_params(&v).expect("de"), b);
    }

    #[test]
    fn a_path_found_is_kept_for_the_same_question_only() {
        let env = Env::from(vec![("PATH".into(), "/bin".into())]);
        let shared = env.clone();
        let looked = std::cell::Cell::new(0);
        let look = |p: &str| {
            looked.set(looked.get() + 1);
            Ok::<_, ()>(PathBuf::from(p))
        };
        let sh = OsStr::new("sh");
        assert_eq!(
            env.found(sh, None, true, || look("/bin/sh")),
            Ok("/bin/sh".into())
        );
        // Another holder of the same list asks the same: no lookup.
        assert_eq!(
            shared.found(sh, None, true, || look("/x")),
            Ok("/bin/sh".into())
        );
        assert_eq!(looked.get(), 1);
        // Another directory, program or base environment is asked again.
        assert_eq!(
            env.found(sh, Some(Path::new("/tmp")), true, || look("/a")),
            Ok("/a".into())
        );
        assert_eq!(
            env.found(OsStr::new("ls"), Some(Path::new("/tmp")), true, || look(
                "/b"
            )),
            Ok("/b".into())
        );
        assert_eq!(
            env.found(OsStr::new("ls"), Some(Path::new("/tmp")), false, || look(
                "/c"
            )),
            Ok("/c".into())
        );
        assert_eq!(looked.get(), 4);
        // A program not found is not remembered as such.
        let missing = OsStr::new("missing");
        assert_eq!(
            env.found(missing, None, true, || Err::<PathBuf, _>(())),
            Err(())
        );
        assert_eq!(
            env.found(missing, None, true, || look("/now/here")),
            Ok("/now/here".into())
        );
        // Changed variables forget what was found.
        let mut changed = env.clone();
        changed.push("PATH", "/usr/bin");
        assert_eq!(
            changed.found(OsStr::new("missing"), None, true, || look(
                "/usr/bin/missing"
            )),
            Ok("/usr/bin/missing".into())
        );
        assert_eq!(looked.get(), 6);
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
