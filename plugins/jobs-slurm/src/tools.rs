//! Slurm's command-line tools, its stable interface: `sbatch` to submit,
//! `squeue` and `sacct` to follow, `scancel` to stop. Every call is a
//! blocking child process; callers run them off the async runtime.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::status::{self, SlurmStatus};
use crate::SlurmError;

/// How to run the tools: where they are.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tools {
    /// The folder of the tools; `PATH` if none.
    pub(crate) bin_dir: Option<PathBuf>,
}

/// The `squeue` fields read, `|`-separated, unpadded.
const SQUEUE_FORMAT: &str = "JobID:|,State:|,Reason:|,NodeList:|,exit_code:|";
/// The `sacct` fields read.
const SACCT_FORMAT: &str = "JobID,State,ExitCode,NodeList,Reason";

impl Tools {
    /// A command for `tool` against the cluster of `conf` (the default
    /// cluster if none).
    fn command(&self, tool: &str, conf: Option<&Path>) -> Command {
        let program: OsString = match &self.bin_dir {
            Some(dir) => dir.join(tool).into_os_string(),
            None => tool.into(),
        };
        let mut cmd = Command::new(program);
        if let Some(conf) = conf {
            cmd.env("SLURM_CONF", conf);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `cmd`; its stdout if it succeeded.
    fn output(tool: &str, mut cmd: Command) -> Result<String, SlurmError> {
        let out = cmd.output().map_err(|source| SlurmError::Spawn {
            tool: tool.into(),
            source,
        })?;
        if !out.status.success() {
            return Err(SlurmError::Tool {
                tool: tool.into(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Submits with `sbatch ARGS` in an environment with `env` on top of
    /// this process's; returns the job id.
    pub(crate) fn sbatch(
        &self,
        args: &[String],
        env: &[(String, String)],
        conf: Option<&Path>,
    ) -> Result<String, SlurmError> {
        let mut cmd = self.command("sbatch", None);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(conf) = conf {
            cmd.env("SLURM_CONF", conf);
        }
        cmd.args(args);
        let out = Self::output("sbatch", cmd)?;
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        let id = out
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SlurmError::NoJobId(out));
        }
        Ok(id)
    }

    /// Cancels job `id`.
    pub(crate) fn scancel(&self, id: &str, conf: Option<&Path>) -> Result<(), SlurmError> {
        let mut cmd = self.command("scancel", conf);
        cmd.arg(id);
        Self::output("scancel", cmd).map(drop)
    }

    /// The jobs of `ids` the controller still knows (within `MinJobAge` of
    /// their end), in one `squeue` call.
    pub(crate) fn squeue(
        &self,
        ids: &[&str],
        conf: Option<&Path>,
    ) -> Result<HashMap<String, SlurmStatus>, SlurmError> {
        let mut cmd = self.command("squeue", conf);
        cmd.args(["--noheader", "--states=all", "--Format", SQUEUE_FORMAT]);
        cmd.arg(format!("--jobs={}", ids.join(",")));
        match Self::output("squeue", cmd) {
            Ok(out) => Ok(status::parse_squeue(&out)),
            // With a single id that the controller forgot, squeue fails;
            // with several, it lists the ones it knows.
            Err(SlurmError::Tool { stderr, .. }) if stderr.contains("Invalid job id") => {
                Ok(HashMap::new())
            }
            Err(e) => Err(e),
        }
    }

    /// The jobs of `ids` from accounting: the database (`sacct`) where the
    /// cluster has one, else the job completion file (`sacct -c`).
    pub(crate) fn sacct(
        &self,
        ids: &[&str],
        conf: Option<&Path>,
    ) -> Result<HashMap<String, SlurmStatus>, SlurmError> {
        let run = |completion_file: bool| {
            let mut cmd = self.command("sacct", conf);
            if completion_file {
                cmd.arg("--completion");
            }
            cmd.args(["--allocations", "--noheader", "--parsable2"]);
            cmd.arg(format!("--format={SACCT_FORMAT}"));
            cmd.arg(format!("--jobs={}", ids.join(",")));
            Self::output("sacct", cmd).map(|out| status::parse_sacct(&out))
        };
        match run(false) {
            Ok(found) if !found.is_empty() => Ok(found),
            first => match (run(true), first) {
                (Ok(found), _) => Ok(found),
                (Err(_), Ok(found)) => Ok(found),
                (Err(e), Err(_)) => Err(e),
            },
        }
    }
}

/// Runs blocking work off the runtime's threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SlurmError> + Send + 'static,
) -> Result<T, SlurmError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(SlurmError::State {
            path: PathBuf::new(),
            message: format!("a blocking task failed: {e}"),
        })
    })
}
