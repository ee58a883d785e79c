//! `SlurmExecutor`: submits a job with `sbatch`, follows it through the
//! shared poller, streams its output files, and maps its end to the job's.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jobs_core::{async_trait, JobContext, JobExecutor, JobFailure, JobInfo, JobSpec};

use crate::files::{JobDir, Saved};
use crate::follow::Follower;
use crate::poller::Poller;
use crate::tools::{blocking, Tools};
use crate::{SlurmError, SlurmSpec, TYPE_NAME};

/// The default polling interval.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Runs jobs on a Slurm cluster (type name [`SlurmJob`](crate::TYPE_NAME)).
///
/// Each job is submitted with `sbatch --parsable`; its stdout and stderr go
/// to files in a folder of its own under the executor's state folder, read
/// as the job runs into Output and Error records (bytes, as written), and
/// the folder is deleted once the job ended and was read. One thread per
/// executor polls every interval with one `squeue` call per cluster for all
/// of its jobs (`sacct` for jobs the controller has forgotten). A stop runs
/// `scancel`. A job whose session ended without stopping it (a detached
/// job, a daemon that died) is re-adopted by a later session through the
/// Slurm job id kept in its folder.
///
/// How Slurm's states show: a job PENDING in Slurm's queue stays
/// NotStarted (the executor [reports its start](JobExecutor::reports_start))
/// and is Running once Slurm runs it, with the node list as its location;
/// each change is told as a Verbose record (`Slurm job 12 is PENDING
/// (Resources)`, `... RUNNING on node1`). COMPLETED ends Completed,
/// CANCELLED after a stop ends Stopped, and every other end (FAILED,
/// TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE, or a
/// CANCELLED the session did not ask for) ends Failed, with a reason that
/// names the Slurm state, the exit code and Slurm's reason field.
pub struct SlurmExecutor {
    state_dir: Option<PathBuf>,
    interval: Duration,
    slurm_conf: Option<PathBuf>,
    tools: Tools,
    poller: OnceLock<Arc<Poller>>,
}

impl std::fmt::Debug for SlurmExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlurmExecutor")
            .field("state_dir", &self.state_dir)
            .field("interval", &self.interval)
            .field("slurm_conf", &self.slurm_conf)
            .finish_non_exhaustive()
    }
}

impl Default for SlurmExecutor {
    fn default() -> Self {
        SlurmExecutor::new()
    }
}

impl SlurmExecutor {
    /// An executor with the default settings: state under
    /// `$JOBCTL_HOME/slurm` (else `$XDG_STATE_HOME/jobctl/slurm`, else
    /// `~/.local/state/jobctl/slurm`), polling every second, the tools from
    /// `PATH`, the cluster of `SLURM_CONF` (or Slurm's default).
    pub fn new() -> Self {
        SlurmExecutor {
            state_dir: None,
            interval: DEFAULT_POLL_INTERVAL,
            slurm_conf: None,
            tools: Tools::default(),
            poller: OnceLock::new(),
        }
    }

    /// An executor configured by the environment, as the plugin is:
    /// `JOBCTL_SLURM_DIR` (the state folder), `JOBCTL_SLURM_POLL` (the
    /// interval, as `500ms` or `2s`), `JOBCTL_SLURM_BIN` (the folder of the
    /// Slurm tools); anything unset or unreadable keeps its default.
    pub fn from_env() -> Self {
        let mut ex = SlurmExecutor::new();
        if let Some(dir) = std::env::var_os("JOBCTL_SLURM_DIR").filter(|v| !v.is_empty()) {
            ex = ex.state_dir(dir);
        }
        if let Some(d) = std::env::var("JOBCTL_SLURM_POLL")
            .ok()
            .and_then(|v| humantime::parse_duration(&v).ok())
        {
            ex = ex.poll_interval(d);
        }
        if let Some(dir) = std::env::var_os("JOBCTL_SLURM_BIN").filter(|v| !v.is_empty()) {
            ex = ex.bin_dir(dir);
        }
        ex
    }

    /// Keeps job folders under `dir` (on a filesystem the compute nodes
    /// share: Slurm writes the output there).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Polls every `interval` (at least 10 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self.poller = OnceLock::new();
        self
    }

    /// Sends jobs to the cluster of this `slurm.conf` unless a job's
    /// environment names one (`SLURM_CONF`).
    pub fn slurm_conf(mut self, conf: impl Into<PathBuf>) -> Self {
        self.slurm_conf = Some(conf.into());
        self
    }

    /// Runs the Slurm tools from `dir` rather than from `PATH`.
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.tools.bin_dir = Some(dir.into());
        self.poller = OnceLock::new();
        self
    }

    /// The folder that holds the job folders.
    pub fn jobs_dir(&self) -> Result<PathBuf, SlurmError> {
        let root = match &self.state_dir {
            Some(dir) => dir.clone(),
            None => jobs_core::state_dir()
                .ok_or(SlurmError::NoStateDir)?
                .join("slurm"),
        };
        Ok(root.join("jobs"))
    }

    fn poller(&self) -> Arc<Poller> {
        Arc::clone(
            self.poller
                .get_or_init(|| Arc::new(Poller::new(self.tools.clone(), self.interval))),
        )
    }

    fn follower(&self, dir: JobDir, saved: Saved, ctx: JobContext) -> Follower {
        Follower::new(self.tools.clone(), self.poller(), dir, saved, ctx)
    }

    /// Submits the job; returns its folder and state once Slurm took it.
    async fn submit(&self, spec: JobSpec, ctx: &JobContext) -> Result<(JobDir, Saved), SlurmError> {
        let slurm = SlurmSpec::from_job_spec(&spec)?;
        let dir = JobDir::new(&self.jobs_dir()?, &ctx.instance_id().to_string());
        let conf = slurm
            .env_var("SLURM_CONF")
            .map(PathBuf::from)
            .or_else(|| self.slurm_conf.clone())
            .or_else(|| std::env::var_os("SLURM_CONF").map(PathBuf::from));
        let name = slurm
            .name
            .clone()
            .or(spec.name)
            .unwrap_or_else(|| format!("Job{}", ctx.id()));
        let cwd = match &slurm.cwd {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().map_err(|e| SlurmError::file(".", e))?,
        };
        let args = slurm.sbatch_args(&name, &cwd, &dir.out(), &dir.err());
        let tools = self.tools.clone();
        blocking(move || {
            dir.create()?;
            let submitted = tools.sbatch(&args, &slurm.env, conf.as_deref());
            let slurm_id = match submitted {
                Ok(id) => id,
                Err(e) => {
                    let _ = dir.remove();
                    return Err(e);
                }
            };
            let saved = Saved {
                slurm_id,
                slurm_conf: conf,
                name,
                out_read: 0,
                err_read: 0,
            };
            if let Err(e) = dir.save(&saved) {
                // Unfollowable: take it back rather than leave it running.
                let _ = tools.scancel(&saved.slurm_id, saved.slurm_conf.as_deref());
                let _ = dir.remove();
                return Err(e);
            }
            Ok((dir, saved))
        })
        .await
    }
}

#[async_trait]
impl JobExecutor for SlurmExecutor {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }

    fn location(&self, spec: &JobSpec) -> String {
        match SlurmSpec::from_job_spec(spec)
            .ok()
            .and_then(|s| s.partition)
        {
            Some(p) => format!("slurm:{p}"),
            None => "slurm".to_string(),
        }
    }

    fn reports_start(&self) -> bool {
        true
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let (dir, saved) = self
            .submit(spec, &ctx)
            .await
            .map_err(|e| JobFailure::from_error(&e))?;
        ctx.verbose(format!(
            "submitted as Slurm job {} '{}'",
            saved.slurm_id, saved.name
        ));
        self.follower(dir, saved, ctx).run().await
    }

    fn resumable(&self, info: &JobInfo) -> bool {
        self.jobs_dir()
            .map(|root| JobDir::new(&root, &info.instance_id.to_string()).has_job())
            .unwrap_or(false)
    }

    async fn resume(&self, info: JobInfo, ctx: JobContext) -> Result<(), JobFailure> {
        let root = self.jobs_dir().map_err(|e| JobFailure::from_error(&e))?;
        let dir = JobDir::new(&root, &info.instance_id.to_string());
        let load = dir.clone();
        let saved = blocking(move || load.load())
            .await
            .map_err(|e| JobFailure::from_error(&e))?;
        ctx.verbose(format!(
            "re-adopted Slurm job {} '{}'",
            saved.slurm_id, saved.name
        ));
        self.follower(dir, saved, ctx).run().await
    }
}
