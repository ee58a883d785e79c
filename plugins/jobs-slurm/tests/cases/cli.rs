//! End to end through `jobctl`: the daemon loads the plugin library
//! (`jobctl daemon start --plugin FILE`) and `jobctl start --type SlurmJob
//! -c LINE` runs jobs on the cluster like any other job.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use jobs_core::plugin::testing;

use crate::support::{process_gone, shared, wait_until, Cluster};

/// The `jobctl` binary, built once.
fn jobctl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        testing::cargo_build(&["-p", "jobs-cli", "-p", "jobs-daemon", "--bins"])
            .expect("build jobctl")
            .join("jobctl")
    })
}

/// A session home with its daemon running the plugin; the daemon is
/// stopped (and its jobs with it) when dropped.
struct Jobctl {
    home: tempfile::TempDir,
    conf: PathBuf,
    cwd: PathBuf,
}

impl Jobctl {
    fn start(cluster: &Cluster) -> Jobctl {
        let plugin = crate::support::plugin().file.clone();
        let j = Jobctl {
            home: tempfile::tempdir().expect("home"),
            conf: cluster.dir().join("etc/slurm.conf"),
            cwd: cluster.dir().to_path_buf(),
        };
        let out = j.run(&["daemon", "start", "--plugin", &plugin.display().to_string()]);
        assert!(out.status.success(), "daemon start: {}", stderr(&out));
        let types = stdout(&j.run(&["plugins"]));
        assert!(types.contains("SlurmJob"), "{types}");
        j
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(jobctl_bin());
        cmd.args(args)
            .env("JOBCTL_HOME", self.home.path())
            .env("SLURM_CONF", &self.conf)
            .env_remove("JOBCTL_PLUGIN_PATH")
            // The daemon's plugin keeps its folder under the session home.
            .env_remove("JOBCTL_SLURM_DIR")
            .current_dir(&self.cwd);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run jobctl")
    }

    /// `jobctl start -q --type SlurmJob -c LINE`: the job's id.
    fn start_job(&self, line: &str) -> String {
        let out = self.run(&["start", "-q", "--type", "SlurmJob", "-c", line]);
        assert!(out.status.success(), "start: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// `jobctl list ID --json`: the job's row.
    fn row(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["list", id, "--json"]);
        assert!(out.status.success(), "list: {}", stderr(&out));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        rows.get(0).cloned().expect("a row")
    }
}

impl Drop for Jobctl {
    fn drop(&mut self) {
        let _ = self.run(&["daemon", "stop"]);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn jobctl_runs_slurm_jobs_end_to_end() {
    let c = shared();
    let j = Jobctl::start(&c);

    // Output and error streams, a failure's reason and exit code.
    let failing = j.start_job(r"printf 'out\000put\n'; printf 'err\n' >&2; exit 3");
    let ok = j.start_job("echo fine");
    let out = j.run(&["wait", &failing, &ok]);
    assert!(out.status.success(), "wait: {}", stderr(&out));
    let row = j.row(&failing);
    assert_eq!(row["type"], "SlurmJob");
    assert_eq!(row["state"], "Failed");
    assert_eq!(row["exit_code"], 3);
    let reason = row["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.contains("FAILED, exit code 3, Slurm reason NonZeroExitCode"),
        "{reason}"
    );
    let got = j.run(&["receive", &failing]);
    assert_eq!(got.stdout, b"out\0put\n");
    assert!(stderr(&got).contains("err\n"), "{}", stderr(&got));
    assert_eq!(j.row(&ok)["state"], "Completed");
    assert_eq!(stdout(&j.run(&["receive", &ok])), "fine\n");

    // Stop of a running job: Stopped, and its process is gone.
    let pid_file = c.dir().join(format!("cli-stop-{}.pid", std::process::id()));
    let sleeper = j.start_job(&format!("echo $$ > {}; exec sleep 600", pid_file.display()));
    let mut pid = String::new();
    wait_until("the job's pid", 30, || {
        pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_string();
        !pid.is_empty()
    });
    // Running once Slurm's next poll sees it run.
    wait_until("the job to be Running", 30, || {
        j.row(&sleeper)["state"] == "Running"
    });
    let out = j.run(&["stop", &sleeper]);
    assert!(out.status.success(), "stop: {}", stderr(&out));
    assert_eq!(j.row(&sleeper)["state"], "Stopped");
    wait_until("the job's process to end", 15, || process_gone(&pid));

    // Twenty at once.
    let many: Vec<String> = (0..20)
        .map(|i| j.start_job(&format!("sleep 1; echo job {i}")))
        .collect();
    let mut args = vec!["wait"];
    args.extend(many.iter().map(String::as_str));
    assert!(j.run(&args).status.success());
    for (i, id) in many.iter().enumerate() {
        assert_eq!(j.row(id)["state"], "Completed", "job {id}");
        assert_eq!(stdout(&j.run(&["receive", id])), format!("job {i}\n"));
    }
    let out = j.run(&["remove", "--all"]);
    assert!(out.status.success(), "remove: {}", stderr(&out));
    // Nothing left behind in the plugin's folder under the session home.
    let jobs = j.home.path().join("slurm/jobs");
    assert!(
        jobs.is_dir(),
        "the plugin kept no folder at {}",
        jobs.display()
    );
    assert!(crate::support::empty_dir(&jobs));
}

#[test]
fn jobctl_shows_a_pending_job_and_runs_it_later() {
    let c = Cluster::start(1);
    let j = Jobctl::start(&c);
    let blocker = j.start_job("sleep 600");
    wait_until("the blocker to run", 30, || {
        stderr(&j.run(&["receive", "--keep", &blocker])).contains("is RUNNING")
    });
    let queued = j.start_job("echo later");
    wait_until("the job to be pending", 30, || {
        stderr(&j.run(&["receive", "--keep", &queued]))
            .contains("VERBOSE: Slurm job 2 is PENDING (Resources)")
    });
    assert_eq!(j.row(&queued)["state"], "NotStarted");
    assert_eq!(j.row(&queued)["location"], "slurm");
    assert!(j.run(&["stop", &blocker]).status.success());
    assert!(j.run(&["wait", &queued]).status.success());
    assert_eq!(j.row(&queued)["state"], "Completed");
    assert_eq!(stdout(&j.run(&["receive", &queued])), "later\n");
}

/// The daemon's pid, from `jobctl daemon status`.
fn daemon_pid(j: &Jobctl) -> String {
    let out = stdout(&j.run(&["daemon", "status"]));
    out.trim()
        .rsplit_once("pid ")
        .map(|(_, pid)| pid.trim().to_string())
        .unwrap_or_else(|| panic!("no daemon pid in {out:?}"))
}

#[test]
fn a_restarted_daemon_re_adopts_a_job_through_the_plugin() {
    let c = shared();
    let j = Jobctl::start(&c);
    let id = j.start_job("echo before; sleep 4; echo after");
    wait_until("the job to run", 30, || {
        stderr(&j.run(&["receive", "--keep", &id])).contains("is RUNNING")
    });
    assert_eq!(j.row(&id)["state"], "Running");
    let node = j.row(&id)["location"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!node.is_empty() && node != "slurm", "{node}");
    // Output is read from Slurm's files on the poller's next round.
    wait_until("the job's first line", 30, || {
        stdout(&j.run(&["receive", "--keep", &id])) == "before\n"
    });
    assert_eq!(stdout(&j.run(&["receive", &id])), "before\n");
    // The daemon dies with the job still in Slurm.
    let pid = daemon_pid(&j);
    let killed = Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    wait_until("the daemon to be gone", 15, || process_gone(&pid));
    let jobs = j.home.path().join("slurm/jobs");
    assert!(
        !crate::support::empty_dir(&jobs),
        "the job's folder must stay"
    );
    // A new daemon loads the plugin again and re-adopts the job through it.
    let plugin = crate::support::plugin().file.display().to_string();
    let out = j.run(&["daemon", "start", "--plugin", &plugin]);
    assert!(out.status.success(), "daemon start: {}", stderr(&out));
    assert_ne!(daemon_pid(&j), pid);
    let out = j.run(&["wait", &id]);
    assert!(out.status.success(), "wait: {}", stderr(&out));
    let row = j.row(&id);
    assert_eq!(row["state"], "Completed", "{row}");
    let got = j.run(&["receive", &id]);
    // What was received before is not repeated.
    assert_eq!(stdout(&got), "after\n");
    assert!(
        stderr(&got).contains("re-adopted Slurm job"),
        "{}",
        stderr(&got)
    );
    assert!(crate::support::empty_dir(&jobs));
}
