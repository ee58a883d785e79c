//! `SlurmSpec`: what a Slurm job runs and the options it is submitted with,
//! as the `params` of its [`JobSpec`], and the `sbatch` command line made
//! from it.

use std::path::{Path, PathBuf};

use jobs_core::{shell_quote, JobSpec};
use serde::{Deserialize, Serialize};

use crate::SlurmError;

/// The type name of Slurm jobs: `jobctl start --type SlurmJob -c LINE`.
pub const TYPE_NAME: &str = "SlurmJob";

/// A Slurm job: the shell line it runs, its directory, environment and
/// name, and the Slurm options it is submitted with. Serialized, it is the
/// `params` of the job's [`JobSpec`]:
///
/// ```json
/// { "command": "train.sh --epochs 3", "cwd": "/home/me/run", "env": [["SEED", "7"]],
///   "name": "train", "partition": "gpu", "time": "2:00:00", "cpus": 4, "mem": "8G",
///   "sbatch_args": ["--qos=long"] }
/// ```
///
/// Every field but the command may be left out. Also accepted, as the
/// `jobctl` command line sends them: `"work": {"shell": {"line": LINE}}` or
/// `"work": {"program": {"argv": [...]}}` in place of `command`, `env` as a
/// list of pairs or an object, and `"hosts": [...]` (passed as
/// `--nodelist`). Spec params of `null` mean "run the spec's command".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SlurmSpec {
    /// The shell line the job runs (`/bin/sh`, through `sbatch --wrap`).
    pub command: String,
    /// The directory the job runs in (default: the executor's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Variables set for the job on top of the submitting environment.
    /// `SLURM_CONF` here also chooses the cluster the job goes to, and
    /// `SBATCH_*` variables are read by `sbatch` as options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// The Slurm job name (default: the job's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `--partition`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `--time`, the time limit in Slurm's format (`30`, `1:00:00`, `2-0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `--cpus-per-task`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// `--mem`, memory per node in Slurm's format (`500M`, `4G`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// More `sbatch` arguments, passed before the ones above.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sbatch_args: Vec<String>,
}

/// The accepted shapes of the params, before they are made one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    work: Option<RawWork>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    env: Option<RawEnv>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    partition: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    cpus: Option<u32>,
    #[serde(default)]
    mem: Option<String>,
    #[serde(default)]
    sbatch_args: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawWork {
    Shell {
        line: String,
    },
    Program {
        argv: Vec<String>,
    },
    Script {
        #[allow(dead_code)]
        text: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEnv {
    Pairs(Vec<(String, String)>),
    Map(serde_json::Map<String, serde_json::Value>),
}

impl SlurmSpec {
    /// A job that runs `command`, a shell line, with default options.
    pub fn new(command: impl Into<String>) -> Self {
        SlurmSpec {
            command: command.into(),
            ..SlurmSpec::default()
        }
    }

    /// Sets the directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Sets the Slurm job name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// Sets the time limit (Slurm's format).
    pub fn time(mut self, limit: impl Into<String>) -> Self {
        self.time = Some(limit.into());
        self
    }

    /// Sets the CPUs per task.
    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Sets the memory per node (Slurm's format).
    pub fn mem(mut self, mem: impl Into<String>) -> Self {
        self.mem = Some(mem.into());
        self
    }

    /// Adds an `sbatch` argument.
    pub fn sbatch_arg(mut self, arg: impl Into<String>) -> Self {
        self.sbatch_args.push(arg.into());
        self
    }

    /// The [`JobSpec`] of a `SlurmJob` with these params; the command shown
    /// is the shell line.
    pub fn into_job_spec(self) -> JobSpec {
        let command = self.command.clone();
        // A struct of strings and numbers always serializes.
        let params = serde_json::to_value(&self).unwrap_or(serde_json::Value::Null);
        JobSpec::new(TYPE_NAME, command).params(params)
    }

    /// Reads the params of `spec` (any accepted shape; `null` runs the
    /// spec's command as a shell line).
    pub fn from_job_spec(spec: &JobSpec) -> Result<SlurmSpec, SlurmError> {
        if spec.params.is_null() {
            return Ok(SlurmSpec::new(spec.command.clone()));
        }
        let raw: RawParams = serde_json::from_value(spec.params.clone())
            .map_err(|e| SlurmError::Params(e.to_string()))?;
        let command = match (raw.command, raw.work) {
            (Some(line), _) | (None, Some(RawWork::Shell { line })) => line,
            (None, Some(RawWork::Program { argv })) if !argv.is_empty() => argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            (None, Some(RawWork::Program { .. })) => {
                return Err(SlurmError::Params("no program to run".into()))
            }
            (None, Some(RawWork::Script { .. })) => {
                return Err(SlurmError::Params(
                    "a Slurm job runs a shell line or a program, not a script".into(),
                ))
            }
            (None, None) => spec.command.clone(),
        };
        if command.trim().is_empty() {
            return Err(SlurmError::Params("no command to run".into()));
        }
        let env = match raw.env {
            None => Vec::new(),
            Some(RawEnv::Pairs(pairs)) => pairs,
            Some(RawEnv::Map(map)) => map
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
        };
        let mut sbatch_args = raw.sbatch_args;
        if !raw.hosts.is_empty() {
            sbatch_args.push(format!("--nodelist={}", raw.hosts.join(",")));
        }
        Ok(SlurmSpec {
            command,
            cwd: raw.cwd,
            env,
            name: raw.name,
            partition: raw.partition,
            time: raw.time,
            cpus: raw.cpus,
            mem: raw.mem,
            sbatch_args,
        })
    }

    /// The value of `key` in the job's environment, if set there.
    pub(crate) fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The arguments of `sbatch`: the user's extra ones first, then the
    /// typed options, then the ones the executor relies on (output files,
    /// `--parsable`), so that a later, conflicting option cannot move the
    /// output where it is not read.
    pub(crate) fn sbatch_args(
        &self,
        name: &str,
        cwd: &Path,
        out: &Path,
        err: &Path,
    ) -> Vec<String> {
        let mut args = self.sbatch_args.clone();
        if let Some(p) = &self.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(t) = &self.time {
            args.push(format!("--time={t}"));
        }
        if let Some(c) = self.cpus {
            args.push(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = &self.mem {
            args.push(format!("--mem={m}"));
        }
        args.push(format!("--job-name={name}"));
        args.push(format!("--chdir={}", cwd.display()));
        args.push(format!("--output={}", out.display()));
        args.push(format!("--error={}", err.display()));
        // A requeued job appends, so what was read stays read.
        args.push("--open-mode=append".into());
        args.push("--parsable".into());
        args.push(format!("--wrap={}", self.command));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(params: serde_json::Value) -> Result<SlurmSpec, SlurmError> {
        SlurmSpec::from_job_spec(&JobSpec::new(TYPE_NAME, "shown").params(params))
    }

    #[test]
    fn the_cli_shape_is_accepted() {
        let s = parse(json!({
            "work": {"shell": {"line": "echo hi"}},
            "cwd": "/tmp",
            "env": [["A", "1"], ["SLURM_CONF", "/x/slurm.conf"]],
            "hosts": []
        }))
        .expect("parse");
        assert_eq!(s.command, "echo hi");
        assert_eq!(s.cwd.as_deref(), Some(Path::new("/tmp")));
        assert_eq!(s.env_var("SLURM_CONF"), Some("/x/slurm.conf"));
        let p = parse(json!({"work": {"program": {"argv": ["printf", "%s\\n", "it's"]}}}))
            .expect("parse");
        assert_eq!(p.command, r"printf '%s\n' 'it'\''s'");
    }

    #[test]
    fn the_native_shape_round_trips() {
        let spec = SlurmSpec::new("train.sh")
            .cwd("/w")
            .env("SEED", "7")
            .name("train")
            .partition("gpu")
            .time("1:00:00")
            .cpus(4)
            .mem("8G")
            .sbatch_arg("--qos=long");
        let back = SlurmSpec::from_job_spec(&spec.clone().into_job_spec()).expect("parse");
        assert_eq!(back, spec);
        let env_map = parse(json!({"command": "x", "env": {"A": "1", "N": 2}})).expect("map");
        assert_eq!(env_map.env_var("N"), Some("2"));
    }

    #[test]
    fn bad_params_are_refused() {
        assert!(parse(json!({"command": "x", "partiton": "typo"})).is_err());
        assert!(parse(json!({"work": {"script": {"text": "1", "file": null}}})).is_err());
        assert!(parse(json!({"command": "  "})).is_err());
        let null = SlurmSpec::from_job_spec(&JobSpec::new(TYPE_NAME, "echo x")).expect("null");
        assert_eq!(null.command, "echo x");
    }

    #[test]
    fn executor_options_come_last() {
        let s = SlurmSpec::new("true")
            .partition("p")
            .sbatch_arg("--output=/elsewhere");
        let args = s.sbatch_args("n", Path::new("/c"), Path::new("/o"), Path::new("/e"));
        assert_eq!(args[0], "--output=/elsewhere");
        let ours = args.iter().position(|a| a == "--output=/o").expect("ours");
        assert!(ours > 0);
        assert_eq!(args.last().map(String::as_str), Some("--wrap=true"));
    }
}
