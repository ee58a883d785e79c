//! Hooks: programs the daemon runs when a job reaches a finished state
//! (Completed, Failed, Stopped): the job's own `start --on-finish` shell
//! line, and every executable of `$JOBCTL_HOME/hooks/`, in name order.
//!
//! A hook learns the job from its environment (the daemon's, plus
//! `JOBCTL_JOB_ID`, `JOBCTL_JOB_NAME`, `JOBCTL_JOB_TYPE`, `JOBCTL_JOB_STATE`,
//! `JOBCTL_JOB_EXIT_CODE`, `JOBCTL_JOB_REASON` and `JOBCTL_HOME`; the last
//! three empty when there is none), runs in the home with no standard
//! input, in a process group of its own, and gets [`DEFAULT_TIMEOUT`]
//! (`JOBCTL_HOOK_TIMEOUT` in the daemon's environment sets another) before
//! its group is killed. Its output (the first 64 KiB of each stream) and
//! its exit status go to the daemon's log. Hooks are not jobs: they change no job and are not in the table.
//!
//! Hooks follow the session's events (see `events`), so a hook never
//! delays a job or a request: finished jobs queue their hooks in a bounded
//! queue, [`CONCURRENT`] run at once, and a burst waits its turn. A queue
//! that is full makes the event reader fall behind, which then reads what
//! it missed from the store: no hook is lost, none runs twice.
//!
//! The hooks folder obeys the plugins folder's rule
//! ([`jobs_core::plugin::check_folder`] for the folder,
//! [`jobs_core::plugin::check_trusted`] for each hook): it and the folders above it
//! belong to the daemon's user (or root) and nobody else may write them;
//! each hook file likewise. A folder that breaks the rule is logged and no
//! hook of it runs; the jobs' own `--on-finish` lines still do (they came
//! through the session's socket, from its user).
//!
//! A daemon that stops (`daemon stop`, SIGTERM) first ends its jobs, then
//! waits for their hooks, queued ones included, up to [`STOP_WAIT`]; a
//! hook still running then is killed and logged. Jobs that a crash ended
//! are decided at the next start, and their hooks run then.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{EventStream, JobEvent, JobId, Session};
use jobs_store_sqlite::SqliteStore;
use tokio::sync::{mpsc, Notify, Semaphore};
use tracing::{info, warn};

use crate::fail::Fail;

/// How long a hook may run before it is killed.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many hooks run at once.
const CONCURRENT: usize = 4;

/// How many hook runs may wait.
const QUEUE: usize = 1024;

/// How long a stopping daemon waits for the hooks of the jobs it ended
/// (`daemon stop` itself waits 30 s for the daemon to be gone).
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(20);

/// The hooks of a session: the jobs' finish lines and the hooks folder.
pub(crate) struct Hooks {
    home: PathBuf,
    store: Arc<SqliteStore>,
    /// The `--on-finish` lines, by job.
    lines: Mutex<HashMap<JobId, Vec<u8>>>,
    timeout: Duration,
    /// The last event whose hooks are queued (or that had none).
    seen: AtomicU64,
    /// Hook runs queued or running.
    busy: AtomicUsize,
    /// Told when `seen` or `busy` changes.
    changed: Notify,
    /// The process groups of the hooks running now.
    groups: Mutex<std::collections::HashSet<i32>>,
}

/// One hook to run for one finished job.
struct Run {
    what: What,
    env: Vec<(&'static str, String)>,
    job: JobId,
}

enum What {
    Line(Vec<u8>),
    File(PathBuf),
}

impl What {
    fn label(&self) -> String {
        match self {
            What::Line(l) => format!("--on-finish '{}'", String::from_utf8_lossy(l)),
            What::File(p) => p.display().to_string(),
        }
    }
}

impl Hooks {
    /// The hooks of the session in `home`, with the finish lines `store`
    /// kept across restarts.
    pub(crate) fn new(home: &Path, store: Arc<SqliteStore>) -> anyhow::Result<Arc<Hooks>> {
        let lines = store.on_finish_hooks()?.into_iter().collect();
        let timeout = match std::env::var("JOBCTL_HOOK_TIMEOUT") {
            Ok(v) => jobs_core::parse_duration(&v).unwrap_or_else(|e| {
                warn!("JOBCTL_HOOK_TIMEOUT={v} is not a duration ({e}); hooks get 60s");
                DEFAULT_TIMEOUT
            }),
            Err(_) => DEFAULT_TIMEOUT,
        };
        Ok(Arc::new(Hooks {
            home: home.to_path_buf(),
            store,
            lines: Mutex::new(lines),
            timeout,
            seen: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            changed: Notify::new(),
            groups: Mutex::default(),
        }))
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Vec<u8>>> {
        // Each use is one insert, get or remove: a panic leaves it whole.
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<i32>> {
        // Each use is one insert, remove or walk: a panic leaves it whole.
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a job with `start` and gives it its finish line, if any.
    /// The line is in place before the job can be seen finishing: the
    /// event reader looks it up under the same lock.
    pub(crate) fn start_with(
        &self,
        line: Option<String>,
        start: impl FnOnce() -> Result<JobId, Fail>,
    ) -> Result<JobId, Fail> {
        let Some(line) = line else {
            return start();
        };
        let mut lines = self.lines();
        let id = start()?;
        lines.insert(id, line.clone().into_bytes());
        drop(lines);
        self.store
            .set_on_finish(id, line.as_bytes())
            .map_err(|e| Fail::from(jobs_core::Error::from(e)))?;
        Ok(id)
    }

    /// Follows the session's events from `rx` (subscribed when the last
    /// event was `from`) and runs the hooks of each finished job.
    pub(crate) fn spawn(self: Arc<Self>, session: Session, rx: EventStream, from: u64) {
        self.seen.store(from, Ordering::SeqCst);
        let (tx, queue) = mpsc::channel(QUEUE);
        tokio::spawn(Arc::clone(&self).run_queue(queue));
        tokio::spawn(self.follow(session, rx, from, tx));
    }

    async fn follow(
        self: Arc<Self>,
        session: Session,
        mut rx: EventStream,
        mut last: u64,
        tx: mpsc::Sender<Run>,
    ) {
        loop {
            let Some(next) = rx.next().await else {
                return;
            };
            match next {
                Ok(ev) => {
                    if !self.take(ev, &mut last, &tx).await {
                        return;
                    }
                }
                Err(lagged) => {
                    if let Some(to) = self.none_due(&session) {
                        // Nothing to run for what was missed: skip it.
                        if to > last {
                            last = to;
                            self.saw(last);
                        }
                        continue;
                    }
                    warn!("hooks: {lagged}; reading them from the store");
                    // A page at a time: the flood that made us lag (a
                    // large batch's) is never all in memory at once.
                    loop {
                        let page = match session.events_after(last, 1000) {
                            Ok(page) if page.is_empty() => break,
                            Ok(page) => page,
                            Err(e) => {
                                warn!("hooks: cannot read the events: {e}");
                                break;
                            }
                        };
                        for ev in page {
                            if !self.take(ev, &mut last, &tx).await {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// With no finish line kept and no hooks folder, no event so far calls
    /// for a hook: the number of the last one, to skip to without reading
    /// them back. Looked at under the lines' lock, which a start with a
    /// finish line holds until its line is in place.
    fn none_due(&self, session: &Session) -> Option<u64> {
        let lines = self.lines();
        (lines.is_empty() && !self.folder().is_dir()).then(|| session.last_event())
    }

    /// Queues the hooks of `ev` unless it was seen (`last` is the last
    /// seen); `false` once the queue is gone.
    async fn take(&self, ev: JobEvent, last: &mut u64, tx: &mpsc::Sender<Run>) -> bool {
        if ev.seq <= *last {
            return true;
        }
        *last = ev.seq;
        for run in self.runs(&ev) {
            self.busy.fetch_add(1, Ordering::SeqCst);
            if tx.send(run).await.is_err() {
                return false;
            }
        }
        self.saw(*last);
        true
    }

    /// Every event through `last` is taken: tells whoever waits for that.
    fn saw(&self, last: u64) {
        self.seen.store(last, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// The hooks folder.
    fn folder(&self) -> PathBuf {
        self.home.join("hooks")
    }

    /// The hooks an event calls for: none unless the job just finished.
    fn runs(&self, ev: &JobEvent) -> Vec<Run> {
        let Some(state) = ev.to else {
            self.lines().remove(&ev.id);
            return Vec::new();
        };
        if !state.is_finished() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(line) = self.lines().get(&ev.id).cloned() {
            out.push(What::Line(line));
        }
        out.extend(self.folder_hooks().into_iter().map(What::File));
        if out.is_empty() {
            // The common case (a batch's items): no environment to build.
            return Vec::new();
        }
        let env = vec![
            ("JOBCTL_JOB_ID", ev.id.to_string()),
            ("JOBCTL_JOB_NAME", ev.name.clone()),
            ("JOBCTL_JOB_TYPE", ev.type_name.clone()),
            ("JOBCTL_JOB_STATE", state.to_string()),
            (
                "JOBCTL_JOB_EXIT_CODE",
                ev.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            ),
            ("JOBCTL_JOB_REASON", ev.reason.clone().unwrap_or_default()),
            ("JOBCTL_HOME", self.home.display().to_string()),
        ];
        out.into_iter()
            .map(|what| Run {
                what,
                env: env.clone(),
                job: ev.id,
            })
            .collect()
    }

    /// The executables of the hooks folder, in name order; none (logged)
    /// when the folder or a file breaks the plugins folder's rule.
    fn folder_hooks(&self) -> Vec<PathBuf> {
        let dir = self.folder();
        if !dir.is_dir() {
            return Vec::new();
        }
        let dir = match jobs_core::plugin::check_folder(&dir) {
            Ok(d) => d,
            Err(e) => {
                warn!(
                    "hooks folder refused, no hook of it runs: {:#}",
                    anyhow::Error::new(e)
                );
                return Vec::new();
            }
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                warn!("cannot read the hooks folder {}: {e}", dir.display());
                return Vec::new();
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                std::fs::symlink_metadata(p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
            // Run by the path checked: its folder admits no one else's files.
            .filter_map(|p| match jobs_core::plugin::check_trusted(&p) {
                Ok(checked) => Some(checked),
                Err(e) => {
                    warn!("hook refused: {:#}", anyhow::Error::new(e));
                    None
                }
            })
            .collect();
        files.sort();
        files
    }

    /// Runs queued hooks, [`CONCURRENT`] at a time.
    async fn run_queue(self: Arc<Self>, mut queue: mpsc::Receiver<Run>) {
        let slots = Arc::new(Semaphore::new(CONCURRENT));
        while let Some(run) = queue.recv().await {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let me = Arc::clone(&self);
            tokio::spawn(async move {
                me.run(run).await;
                drop(slot);
                me.busy.fetch_sub(1, Ordering::SeqCst);
                me.changed.notify_waiters();
            });
        }
    }

    /// Waits until the hooks of every event up to `upto` have run, or
    /// `limit` passed; says whether they all did.
    pub(crate) async fn drain(&self, upto: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let busy = self.busy.load(Ordering::SeqCst);
            if self.seen.load(Ordering::SeqCst) >= upto && busy == 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, changed).await.is_err() {
                warn!(
                    "{busy} hook run(s) had not ended {} after the session closed: killed",
                    jobs_core::format_duration(limit)
                );
                for &group in self.groups().iter() {
                    kill_group(group);
                }
                return false;
            }
        }
    }

    async fn run(&self, run: Run) {
        crate::reported::before_report();
        let label = run.what.label();
        let job = run.job;
        let mut cmd = match &run.what {
            What::Line(line) => {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.arg("-c").arg(OsStr::from_bytes(line));
                c
            }
            What::File(path) => tokio::process::Command::new(path),
        };
        cmd.envs(run.env)
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                warn!(job, "hook {label} did not start: {e}");
                return;
            }
        };
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        if let Some(pid) = pid {
            self.groups().insert(pid);
        }
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let done = async {
            let (out, err, status) = tokio::join!(logged(out), logged(err), child.wait());
            status.map(|s| (out, err, s))
        };
        let ended = tokio::time::timeout(self.timeout, done).await;
        if let Some(pid) = pid {
            self.groups().remove(&pid);
        }
        match ended {
            Ok(Ok((out, err, status))) => {
                for line in String::from_utf8_lossy(&out.0).lines() {
                    info!(job, "hook {label}: {line}");
                }
                for line in String::from_utf8_lossy(&err.0).lines() {
                    warn!(job, "hook {label} (stderr): {line}");
                }
                if out.1 + err.1 > 0 {
                    warn!(
                        job,
                        "hook {label}: {} more bytes of output not logged",
                        out.1 + err.1
                    );
                }
                if status.success() {
                    info!(job, "hook {label} ended: {status}");
                } else {
                    warn!(job, "hook {label} failed: {status}");
                }
            }
            Ok(Err(e)) => warn!(job, "hook {label}: {e}"),
            Err(_) => {
                // Its whole group: a shell's children too.
                if let Some(pid) = pid {
                    kill_group(pid);
                }
                warn!(
                    job,
                    "hook {label} killed after {}",
                    jobs_core::format_duration(self.timeout)
                );
            }
        }
    }
}

/// How much of a hook's stdout, and of its stderr, goes to the log.
const LOGGED: u64 = 64 << 10;

/// The first [`LOGGED`] bytes of a hook's pipe, and how many more it
/// wrote (read and dropped, so the hook never blocks on a full pipe).
async fn logged(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> (Vec<u8>, u64) {
    use tokio::io::AsyncReadExt;
    let Some(mut pipe) = pipe else {
        return (Vec::new(), 0);
    };
    let mut kept = Vec::new();
    let _ = (&mut pipe).take(LOGGED).read_to_end(&mut kept).await;
    let more = tokio::io::copy(&mut pipe, &mut tokio::io::sink())
        .await
        .unwrap_or(0);
    (kept, more)
}

/// Kills a hook's whole process group: a shell's children too.
fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}
