//! The harness of jobctl's end-to-end tests: the real `jobctl` binary, a
//! private session home per test, and a guard that ends the session's
//! daemon when the test ends, passed or failed.
//!
//! The binaries (`jobctl` and its `jobctl-daemon`) are built once per test
//! run with `cargo build -p jobs-cli -p jobs-daemon --bins` into the same target directory as the tests (found from
//! the test executable's own path), so plain `cargo test --workspace`
//! works without a prior build. `JOBCTL_BIN` names another binary instead.
//!
//! ```no_run
//! let home = jobctl_tests::TestHome::new();
//! let id = home.start(&["--", "echo", "hi"]);
//! home.ok(&["wait", &id.to_string()]);
//! assert_eq!(home.ok(&["receive", &id.to_string()]), "hi\n");
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long any one jobctl command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The jobctl binary, built on first use.
pub fn jobctl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("JOBCTL_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("the test executable's path");
        // <target>/<profile>/deps/<test binary>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in <target>/<profile>/deps");
        let target_dir = profile_dir
            .parent()
            .expect("the profile directory lives in the target directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "jobs-cli",
            "-p",
            "jobs-daemon",
            "--bins",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building jobctl failed: {status}");
        profile_dir.join("jobctl")
    })
}

/// What a finished jobctl command gave.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: String,
}

impl Run {
    /// stdout as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Waits for a child with a deadline, collecting its output; kills it and
/// panics if the deadline passes.
pub fn finish(mut child: Child, timeout: Duration, what: &str) -> Run {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut b);
        }
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut b);
        }
        b
    });
    let begin = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if begin.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = t_out.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&t_err.join().expect("stderr reader")).into_owned();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// A session home of a test's own; dropping it ends its daemon.
#[derive(Debug)]
pub struct TestHome {
    dir: tempfile::TempDir,
    /// Pids of daemons seen during the test, killed on drop if still alive.
    seen: std::sync::Mutex<Vec<u32>>,
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHome {
    /// A fresh private home (mode 0700, as jobctl would create it; no
    /// daemon runs yet).
    pub fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        jobctl_bin();
        let dir = tempfile::Builder::new()
            .prefix("jobctl-e2e-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .expect("temp dir");
        TestHome {
            dir,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A jobctl command for this home, with piped stdout and stderr.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(jobctl_bin());
        c.args(args)
            .env("JOBCTL_HOME", self.dir.path())
            .env_remove("JOBCTL_PLUGIN_PATH")
            .env_remove("JOBCTL_EXECUTOR_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs jobctl to its end.
    pub fn run(&self, args: &[&str]) -> Run {
        let child = self.cmd(args).spawn().expect("spawn jobctl");
        finish(
            child,
            COMMAND_TIMEOUT,
            &format!("jobctl {}", args.join(" ")),
        )
    }

    /// Runs jobctl, asserts exit 0, returns stdout as text.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "jobctl {} failed: stderr: {} stdout: {}\nthe daemon's log ends:\n{}",
            args.join(" "),
            r.stderr,
            r.text(),
            self.log_tail(20)
        );
        r.text()
    }

    /// The last `n` lines of the session daemon's log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `jobctl start -q ARGS`, returning the id.
    pub fn start(&self, args: &[&str]) -> u64 {
        let mut all = vec!["start", "-q"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("start printed {out:?}"))
    }

    /// One job's row as JSON (`list ID --json`).
    pub fn job(&self, id: u64) -> serde_json::Value {
        let out = self.ok(&["list", &id.to_string(), "--json", "--include-children"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("list --json is JSON");
        v.as_array()
            .and_then(|a| a.iter().find(|j| j["id"] == id).cloned())
            .unwrap_or_else(|| panic!("job {id} not in {out}"))
    }

    /// The daemon's pid, if one runs (`daemon status`).
    pub fn daemon_pid(&self) -> Option<u32> {
        let out = self.ok(&["daemon", "status"]);
        let pid = out
            .trim()
            .strip_prefix("running, pid ")
            .map(|p| p.parse().expect("a pid"));
        if let Some(p) = pid {
            self.seen.lock().expect("lock").push(p);
        }
        pid
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("jobctl.sock")
    }
}

/// Whether a process is alive (a zombie counts as gone once all its threads
/// ended).
pub fn alive(pid: u32) -> bool {
    // A killed process whose main thread is a zombie may still have other
    // threads tearing down, its files (a listening socket) still open: it
    // is gone once none of its threads runs.
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
            // The state follows the parenthesized command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        })
    })
}

/// Waits until `cond` holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let begin = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if begin.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids in /proc, each with what `read` makes of its file `name`
/// (`stat`, `cmdline`) where it gives something.
pub fn procs<T>(name: &str, mut read: impl FnMut(u32, &[u8]) -> Option<T>) -> Vec<T> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(format!("/proc/{pid}/{name}")) else {
            continue;
        };
        out.extend(read(pid, &bytes));
    }
    out
}

/// The fields of a /proc stat line after `(comm)`: state, ppid, pgrp, ...
pub fn stat_fields(stat: &[u8]) -> Vec<String> {
    let stat = String::from_utf8_lossy(stat);
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Pids of the daemon processes serving `home`, found in /proc.
pub fn daemons_of(home: &Path) -> Vec<u32> {
    let want = home.as_os_str().as_encoded_bytes();
    procs("cmdline", |pid, cmdline| {
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_daemon = args.first().is_some_and(|a| a.ends_with(b"jobctl-daemon"));
        (is_daemon && args.contains(&want) && alive(pid)).then_some(pid)
    })
}

/// Sends SIGKILL to a process.
pub fn kill9(pid: u32) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        // Stop the daemon (bounded), then make sure every daemon this test
        // saw is gone, even if stopping failed.
        let pid = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.daemon_pid()))
            .ok()
            .flatten();
        if pid.is_some() {
            if let Ok(child) = self.cmd(&["daemon", "stop"]).spawn() {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    finish(child, Duration::from_secs(20), "jobctl daemon stop")
                }));
            }
        }
        let mut seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        seen.extend(daemons_of(self.dir.path()));
        for p in seen {
            if alive(p) {
                kill9(p);
            }
        }
        // Detached jobs outlive their daemon by design: a test that failed
        // before it stopped one leaves it to be ended here, group and all.
        for pgid in detached_groups_of(self.dir.path()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The process groups of the detached jobs of the session at `home`: those
/// of the processes whose command line names a folder under its
/// `detached` folder (the wrapper that keeps a detached job's status).
fn detached_groups_of(home: &Path) -> Vec<i32> {
    let mut marker = home.as_os_str().as_encoded_bytes().to_vec();
    marker.extend_from_slice(b"/detached/");
    let mut groups = procs("cmdline", |pid, cmdline| {
        if !cmdline
            .windows(marker.len())
            .any(|w| w == marker.as_slice())
        {
            return None;
        }
        let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        stat_fields(&stat)
            .get(2)
            .and_then(|g| g.parse::<i32>().ok())
            .filter(|&g| g > 1)
    });
    groups.sort_unstable();
    groups.dedup();
    groups
}
