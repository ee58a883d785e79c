//! A real Slurm cluster for the tests (scripts/slurm-up), the plugin built
//! as a cdylib and loaded, and small helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use jobs_core::plugin::{self, testing, LoadedPlugin};
use jobs_core::{JobExecutor, JobId, JobSpec, JobState, Received, Session, Stream};
use jobs_slurm::{SlurmExecutor, SlurmSpec};

/// The workspace's scripts folder.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// A private single-node cluster under a temp dir; stopped (by the pids
/// its script recorded) when dropped. Its start also tells a watcher to
/// stop it if this test process dies without dropping it.
pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Cluster {
    /// Starts a cluster whose node has `cpus` CPUs. A start whose node does
    /// not come up is tried again afresh (new folder, new ports), up to
    /// three times; the failure names what each try printed.
    pub(crate) fn start(cpus: u32) -> Cluster {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Cluster::try_start(cpus) {
                Ok(cluster) => return cluster,
                Err(why) => failures.push(why),
            }
        }
        panic!("slurm-up failed 3 times:\n{}", failures.join("\n"));
    }

    /// One start of a cluster; the error is what slurm-up printed.
    fn try_start(cpus: u32) -> Result<Cluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("jobs-slurm-cluster-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let out = Command::new(scripts().join("slurm-up"))
            .arg(dir.path())
            .args(["--cpus", &cpus.to_string()])
            .args(["--watch", &std::process::id().to_string()])
            .env("SLURM_UP_WAIT", "90")
            .output()
            .map_err(|e| format!("run slurm-up: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let cluster = Cluster {
            conf: stdout
                .lines()
                .find_map(|l| l.strip_prefix("SLURM_CONF="))
                .map(PathBuf::from)
                .unwrap_or_default(),
            dir,
        };
        if out.status.success() && cluster.conf.is_file() {
            Ok(cluster)
        } else {
            Err(format!(
                "slurm-up ({}): {stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The cluster's folder.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A Slurm tool run against this cluster.
    pub(crate) fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(name);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// A job spec for this cluster.
    pub(crate) fn spec(&self, command: &str) -> SlurmSpec {
        SlurmSpec::new(command)
            .env("SLURM_CONF", self.conf.to_string_lossy())
            .cwd(self.dir())
    }

    /// An in-process executor for this cluster with its state under `state`.
    pub(crate) fn executor(&self, state: &Path) -> SlurmExecutor {
        SlurmExecutor::new()
            .state_dir(state)
            .slurm_conf(&self.conf)
            .poll_interval(Duration::from_millis(250))
    }

    /// Restarts the controller with its state cleared: it forgets every
    /// job, so only accounting (the job completion file) still knows them.
    pub(crate) fn restart_controller_forgetting_jobs(&self) {
        let pid_file = self.dir().join("slurmctld.daemon.pid");
        let pid = std::fs::read_to_string(&pid_file).expect("controller pid");
        let pid = pid.trim();
        Command::new("kill").arg(pid).status().expect("kill");
        let gone = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            assert!(Instant::now() < gone, "slurmctld {pid} did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Started by a shell that exits at once, so that it is not our
        // child; slurm-down stops it by the pid recorded here.
        let out = Command::new("sh")
            .args([
                "-c",
                "setsid slurmctld -D -c -i -f \"$1\" </dev/null >/dev/null 2>&1 & echo $!",
                "sh",
            ])
            .arg(&self.conf)
            .env("SLURM_CONF", &self.conf)
            .output()
            .expect("start slurmctld");
        let new_pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!new_pid.is_empty(), "no pid for the new slurmctld");
        std::fs::write(&pid_file, new_pid).expect("write pid");
        let up = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self
                .tool("sinfo")
                .args(["-h", "-N", "-o", "%T"])
                .output()
                .expect("sinfo");
            let state = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && state.trim() == "idle" {
                return;
            }
            assert!(Instant::now() < up, "slurmctld did not come back: {state}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(scripts().join("slurm-down"))
            .arg(self.dir.path())
            .output();
        // Jobs delete their own folders; these go once they are empty.
        let _ = std::fs::remove_dir(plugin_state_dir().join("jobs"));
        let _ = std::fs::remove_dir(plugin_state_dir());
    }
}

/// The cluster most tests share: started by the first test that asks,
/// stopped when the last test holding it is done (and started again if a
/// later test asks).
pub(crate) fn shared() -> Arc<Cluster> {
    static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = slot.upgrade() {
        return c;
    }
    // Enough CPUs that tests running side by side do not queue each other.
    let c = Arc::new(Cluster::start(64));
    *slot = Arc::downgrade(&c);
    c
}

/// The plugin's state folder (the plugin reads `JOBCTL_SLURM_DIR` once).
pub(crate) fn plugin_state_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("jobs-slurm-plugin-{}", std::process::id()))
    })
}

/// The plugin, built as a cdylib and loaded once.
pub(crate) fn plugin() -> &'static LoadedPlugin {
    static PLUGIN: OnceLock<LoadedPlugin> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        // Read by the plugin when the host first calls it, just after this.
        std::env::set_var("JOBCTL_SLURM_DIR", plugin_state_dir());
        std::env::set_var("JOBCTL_SLURM_POLL", "250ms");
        let path = testing::build_plugin("jobs-slurm").expect("build the plugin");
        plugin::load(path).expect("load the plugin")
    })
}

/// A session with the loaded plugin's executor.
pub(crate) fn plugin_session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::clone(&plugin().executor));
    s
}

/// A session with an in-process executor.
pub(crate) fn session_with(executor: SlurmExecutor) -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(executor));
    s
}

/// Waits for `ids` to finish (at most `secs`).
pub(crate) fn wait(s: &Session, ids: &[JobId], secs: u64) {
    let out = s
        .wait_blocking(
            ids,
            jobs_core::WaitMode::All,
            Some(Duration::from_secs(secs)),
        )
        .expect("wait");
    assert!(!out.timed_out, "jobs {ids:?} did not finish within {secs}s");
}

/// Waits until `check` holds (at most `secs`).
pub(crate) fn wait_until(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The bytes of one stream, concatenated.
pub(crate) fn bytes_of(recs: &[Received], stream: Stream) -> Vec<u8> {
    recs.iter()
        .filter(|r| r.record.stream == stream)
        .flat_map(|r| r.record.payload.to_display_bytes())
        .collect()
}

/// The text of one stream.
pub(crate) fn text_of(recs: &[Received], stream: Stream) -> String {
    String::from_utf8_lossy(&bytes_of(recs, stream)).into_owned()
}

/// Whether process `pid` is a zombie (gone, for our purposes).
pub(crate) fn is_zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

/// Whether process `pid` is gone (or a zombie).
pub(crate) fn process_gone(pid: &str) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid)
}

/// Whether a folder holds nothing (or is not there).
pub(crate) fn empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// The conformance subject: the loaded plugin's executor against the
/// shared cluster.
pub(crate) struct PluginSubject {
    cluster: Arc<Cluster>,
}

impl PluginSubject {
    /// A subject on the shared cluster.
    pub(crate) fn new() -> PluginSubject {
        PluginSubject { cluster: shared() }
    }

    fn job(&self, command: &str) -> JobSpec {
        self.cluster.spec(command).into_job_spec()
    }
}

impl jobs_core::conformance::Subject for PluginSubject {
    fn executor(&self) -> Arc<dyn JobExecutor> {
        Arc::clone(&plugin().executor)
    }

    fn emit(&self, lines: &[&str]) -> JobSpec {
        let words: Vec<String> = lines.iter().map(|l| jobs_core::shell_quote(l)).collect();
        self.job(&format!("printf '%s\\n' {}", words.join(" ")))
    }

    fn sleep(&self, secs: u64) -> JobSpec {
        self.job(&format!("sleep {secs}"))
    }

    fn fail(&self, marker: &str) -> JobSpec {
        // The reason names the Slurm job, and so the marker.
        let mut spec = self.cluster.spec("exit 3").name(marker).into_job_spec();
        spec.name = Some(marker.to_string());
        spec
    }
}

/// Whether a job is in `state` now.
pub(crate) fn is(s: &Session, id: JobId, state: JobState) -> bool {
    s.info(id).map(|i| i.state == state).unwrap_or(false)
}

/// The Slurm job id a job's Verbose records announce.
pub(crate) fn slurm_id(recs: &[Received]) -> String {
    let verbose = text_of(recs, Stream::Verbose);
    let at = verbose.find("Slurm job ").expect("a Slurm job id") + "Slurm job ".len();
    verbose[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

/// A store that keeps job rows as well as records, so that a second
/// session over it can restore the first one's jobs (as the CLI's durable
/// store does across a daemon restart).
#[derive(Default)]
pub(crate) struct KeepingStore {
    rows: Mutex<std::collections::BTreeMap<JobId, jobs_core::JobInfo>>,
    records: jobs_core::MemoryStore,
    max_seq: std::sync::atomic::AtomicU64,
}

impl jobs_core::Store for KeepingStore {
    fn save_job(&self, info: &jobs_core::JobInfo) -> Result<(), jobs_core::StoreError> {
        self.rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(info.id, info.clone());
        Ok(())
    }

    fn delete_job(&self, id: JobId) -> Result<(), jobs_core::StoreError> {
        self.rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.records.delete_job(id)
    }

    fn load_jobs(&self) -> Result<Vec<jobs_core::JobInfo>, jobs_core::StoreError> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        Ok(rows.values().cloned().collect())
    }

    fn max_seq(&self) -> Result<u64, jobs_core::StoreError> {
        Ok(self.max_seq.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn append(
        &self,
        job: JobId,
        seq: u64,
        record: jobs_core::Record,
    ) -> Result<(), jobs_core::StoreError> {
        self.max_seq
            .fetch_max(seq, std::sync::atomic::Ordering::SeqCst);
        self.records.append(job, seq, record)
    }

    fn read(
        &self,
        job: JobId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, jobs_core::Record)>, jobs_core::StoreError> {
        self.records.read(job, after, limit)
    }

    fn discard(&self, job: JobId, through: u64) -> Result<(), jobs_core::StoreError> {
        self.records.discard(job, through)
    }

    fn has_records(&self, job: JobId) -> Result<bool, jobs_core::StoreError> {
        self.records.has_records(job)
    }
}
