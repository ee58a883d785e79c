//! [`ExecutableExecutor`]: one long-running executable serving every job of
//! its type, spoken to in JSON lines.
//!
//! The executable's pipes are served by threads of their own (a writer fed
//! by a channel, a reader of its stdout that routes each line to its job, a
//! reader of its stderr that logs), never by the runtime of the session
//! that happened to start it: a process may outlive that runtime (a test's
//! session) and serve the jobs of another.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jobs_core::{
    async_trait, JobContext, JobExecutor, JobFailure, JobSpec, Payload, ProgressRecord, Record,
    Stream,
};
use tokio::sync::oneshot;

use crate::protocol::{base64_decode, FromExecutor, ToExecutor, PROTOCOL_VERSION};

/// How long a started executable may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped job may take to end before its run gives up on it.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long an executable that closed its stdout may take to exit before
/// it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often the exit of a process is looked for (see [`watch_exit`]).
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// A job's end, as the executable (or its death) decided it.
type Outcome = Result<(), JobFailure>;

/// A job the executable runs: where its records go, and how its end is told.
struct Slot {
    ctx: Arc<JobContext>,
    done: oneshot::Sender<Outcome>,
}

/// The jobs of one executable process, and whether it is gone.
#[derive(Default)]
struct Table {
    jobs: HashMap<String, Slot>,
    /// Why the process is gone (`exited: ...`), once it is.
    closed: Option<String>,
}

/// What the threads of one process share.
struct Shared {
    /// The job type (the executable's name).
    name: String,
    table: Mutex<Table>,
    /// The last line the process wrote to stderr, for its exit reason.
    last_stderr: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn slot_ctx(&self, job: &str) -> Option<Arc<JobContext>> {
        lock(&self.table).jobs.get(job).map(|s| Arc::clone(&s.ctx))
    }

    /// Routes one line of the executable's stdout.
    fn dispatch(&self, msg: FromExecutor) {
        match msg {
            FromExecutor::Hello { .. } => {
                tracing::warn!("executor {}: a second hello, ignored", self.name);
            }
            FromExecutor::Record {
                job,
                stream,
                text,
                bytes,
                value,
            } => {
                let Some(ctx) = self.slot_ctx(&job) else {
                    return;
                };
                let stream = match stream.as_deref().map(str::parse::<Stream>) {
                    None => Stream::Output,
                    Some(Ok(s)) => s,
                    Some(Err(e)) => {
                        tracing::warn!("executor {}: job {job}: {e}; record dropped", self.name);
                        return;
                    }
                };
                let payload = if let Some(t) = text {
                    Payload::Text(t)
                } else if let Some(b) = bytes {
                    match base64_decode(&b) {
                        Some(b) => Payload::Bytes(b),
                        None => {
                            tracing::warn!(
                                "executor {}: job {job}: `bytes` is not base64; record dropped",
                                self.name
                            );
                            return;
                        }
                    }
                } else if let Some(v) = value {
                    Payload::Value(v)
                } else {
                    tracing::warn!(
                        "executor {}: job {job}: a record without text, bytes or value; dropped",
                        self.name
                    );
                    return;
                };
                ctx.emit(Record::new(stream, payload));
            }
            FromExecutor::Progress {
                job,
                percent,
                activity,
                status,
            } => {
                if let Some(ctx) = self.slot_ctx(&job) {
                    ctx.emit(Record::new(
                        Stream::Progress,
                        Payload::Progress(ProgressRecord {
                            percent,
                            activity,
                            status,
                        }),
                    ));
                }
            }
            FromExecutor::State {
                job,
                blocked,
                location,
            } => {
                if let Some(ctx) = self.slot_ctx(&job) {
                    if let Some(b) = blocked {
                        let _ = ctx.set_blocked(b);
                    }
                    if let Some(l) = location {
                        let _ = ctx.set_location(l);
                    }
                }
            }
            FromExecutor::Exit { job, code, reason } => {
                let Some(slot) = lock(&self.table).jobs.remove(&job) else {
                    return;
                };
                let outcome = match (code, reason) {
                    (code, Some(reason)) => Err(JobFailure {
                        reason,
                        exit_code: code,
                    }),
                    (Some(0) | None, None) => {
                        if code.is_some() {
                            slot.ctx.set_exit_code(0);
                        }
                        Ok(())
                    }
                    (Some(code), None) => Err(JobFailure::exited(code)),
                };
                let _ = slot.done.send(outcome);
            }
            FromExecutor::Unknown => {}
        }
    }

    /// The process is gone: every job it ran fails with `why`.
    /// Only the first call counts.
    fn close(&self, why: String) {
        let jobs = {
            let mut t = lock(&self.table);
            if t.closed.is_some() {
                return;
            }
            t.closed = Some(why.clone());
            std::mem::take(&mut t.jobs)
        };
        if !jobs.is_empty() {
            tracing::warn!("{why}; failing its {} running job(s)", jobs.len());
        } else {
            tracing::info!("{why}");
        }
        for (_, slot) in jobs {
            let _ = slot.done.send(Err(JobFailure::new(why.clone())));
        }
    }
}

/// What the executable's first line said, or why it is refused.
type Hello = Result<String, String>;

/// One running process of the executable.
struct Instance {
    shared: Arc<Shared>,
    /// Lines to its stdin (a writer thread writes them); dropping the
    /// sender closes its stdin, which tells it to end.
    tx: mpsc::Sender<Vec<u8>>,
    child: Arc<Mutex<Child>>,
}

/// A message as its line.
fn line(msg: &ToExecutor<'_>) -> Vec<u8> {
    // Plain data always serializes; `{}` (ignored by the executable)
    // stands in if it ever did not.
    let mut line = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

impl Instance {
    fn kill(&self) {
        let _ = lock(&self.child).kill();
    }
}

/// An executor whose jobs an executable runs: `NAME` is the job type, the
/// program is started at the first job (and again at the next job after it
/// exited), and one process serves every job of the type at once, keyed by
/// their instance ids, in the line protocol of [`PROTOCOL_VERSION`].
///
/// The file is checked by the plugin loader's trust rule
/// ([`jobs_core::plugin::check_trusted`]) every time it is started.
/// Its stderr goes to the log (`tracing`, target `jobs_exec::executor`),
/// a line each.
pub struct ExecutableExecutor {
    name: String,
    path: PathBuf,
    current: tokio::sync::Mutex<Option<Instance>>,
}

impl std::fmt::Debug for ExecutableExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutableExecutor")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ExecutableExecutor {
    /// The executor of job type `name` run by the executable at `path`.
    /// Nothing is started or checked until the first job.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        ExecutableExecutor {
            name: name.into(),
            path: path.into(),
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The executable's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the executable and waits for its hello.
    async fn spawn(&self) -> Result<Instance, JobFailure> {
        let name = &self.name;
        let path = jobs_core::plugin::check_trusted(&self.path).map_err(|e| {
            let e = JobFailure::from_error(&e).reason;
            tracing::warn!("executor {name} not started: {e}");
            JobFailure::new(format!("executor {name} not started: {e}"))
        })?;
        let mut child = Command::new(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a signal to the daemon's group (^C
            // of a daemon in the foreground) is the daemon's to handle.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                JobFailure::new(format!(
                    "cannot start executor {name} ({}): {e}",
                    path.display()
                ))
            })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(JobFailure::new(format!(
                "cannot start executor {name}: its pipes are missing"
            )));
        };
        tracing::info!("executor {name}: started {} (pid {pid})", path.display());
        let shared = Arc::new(Shared {
            name: name.clone(),
            table: Mutex::new(Table::default()),
            last_stderr: Mutex::new(None),
        });
        let child = Arc::new(Mutex::new(child));
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let (hello_tx, hello_rx) = oneshot::channel::<Hello>();
        let (stderr_done_tx, stderr_done) = mpsc::channel::<()>();
        let spawned = (|| -> std::io::Result<()> {
            std::thread::Builder::new()
                .name(format!("exec-{name}-in"))
                .spawn(move || {
                    let mut stdin = stdin;
                    for line in rx {
                        if stdin.write_all(&line).and_then(|_| stdin.flush()).is_err() {
                            break;
                        }
                    }
                })?;
            let sh = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("exec-{name}-err"))
                .spawn(move || {
                    log_stderr(&sh, pid, stderr);
                    let _ = stderr_done_tx.send(());
                })?;
            let sh = Arc::clone(&shared);
            let ch = Arc::clone(&child);
            std::thread::Builder::new()
                .name(format!("exec-{name}-out"))
                .spawn(move || read_stdout(&sh, pid, stdout, hello_tx, &ch, &stderr_done))?;
            let sh = Arc::clone(&shared);
            let ch = Arc::clone(&child);
            std::thread::Builder::new()
                .name(format!("exec-{name}-wait"))
                .spawn(move || watch_exit(&sh, &ch))?;
            Ok(())
        })();
        let instance = Instance { shared, tx, child };
        if let Err(e) = spawned {
            instance.kill();
            return Err(JobFailure::new(format!(
                "executor {name}: cannot start a thread: {e}"
            )));
        }
        let refused = |why: String| {
            tracing::warn!("executor {name} refused: {why}");
            JobFailure::new(format!("executor {name} refused: {why}"))
        };
        match tokio::time::timeout(HELLO_TIMEOUT, hello_rx).await {
            Ok(Ok(Ok(who))) => {
                tracing::info!("executor {name}: {who}, protocol version {PROTOCOL_VERSION}");
                Ok(instance)
            }
            Ok(Ok(Err(why))) => {
                instance.kill();
                Err(refused(why))
            }
            Ok(Err(_)) => {
                instance.kill();
                Err(refused("it said no hello".into()))
            }
            Err(_) => {
                instance.kill();
                Err(refused(format!(
                    "no hello within {} s",
                    HELLO_TIMEOUT.as_secs()
                )))
            }
        }
    }

    /// Registers a job with a running process (started or restarted as
    /// needed) and sends its start line.
    async fn open(&self, start: Vec<u8>, ctx: &Arc<JobContext>) -> Result<Opened, JobFailure> {
        let mut cur = self.current.lock().await;
        // A process found dead is started again; if the new one is gone
        // before the job is registered, once more; then the job fails.
        for _ in 0..2 {
            let alive = cur
                .as_ref()
                .is_some_and(|i| lock(&i.shared.table).closed.is_none());
            if !alive {
                *cur = None;
                *cur = Some(self.spawn().await?);
            }
            let Some(inst) = cur.as_ref() else { continue };
            let job = ctx.instance_id().to_string();
            let (done, rx) = oneshot::channel();
            {
                let mut t = lock(&inst.shared.table);
                if t.closed.is_some() {
                    continue;
                }
                t.jobs.insert(
                    job.clone(),
                    Slot {
                        ctx: Arc::clone(ctx),
                        done,
                    },
                );
            }
            let _ = inst.tx.send(start);
            return Ok(Opened {
                job,
                rx,
                shared: Arc::clone(&inst.shared),
                tx: inst.tx.clone(),
            });
        }
        Err(JobFailure::new(format!(
            "executor {} exited as the job was handed to it",
            self.name
        )))
    }
}

/// A job handed to a process: its key, how its end arrives, and the way
/// to the process.
struct Opened {
    job: String,
    rx: oneshot::Receiver<Outcome>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Vec<u8>>,
}

impl Drop for Opened {
    /// A run that ends (or is dropped) forgets its job's slot.
    fn drop(&mut self) {
        lock(&self.shared.table).jobs.remove(&self.job);
    }
}

/// The `start` line of a job: the work as the daemon's params carry it
/// (a shell line of the command when they carry none), its folder and
/// environment.
fn start_line<'a>(type_name: &'a str, spec: &'a JobSpec, job: String) -> ToExecutor<'a> {
    let params = spec.params.as_object();
    let work = params
        .and_then(|p| p.get("work"))
        .cloned()
        .unwrap_or_else(|| serde_json::json!({ "shell": { "line": spec.command } }));
    ToExecutor::Start {
        job,
        type_name,
        name: spec.name.as_deref(),
        command: &spec.command,
        work,
        cwd: params.and_then(|p| p.get("cwd")),
        env: params.and_then(|p| p.get("env")),
    }
}

/// Logs each line of the executable's stderr, keeping the last.
fn log_stderr(shared: &Shared, pid: u32, stderr: std::process::ChildStderr) {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        tracing::info!("executor {}[{pid}]: {line}", shared.name);
        *lock(&shared.last_stderr) = Some(line.to_string());
    }
}

/// Reads the executable's stdout: its hello first, then lines for jobs;
/// at the end, waits for the process and fails the jobs it still ran.
fn read_stdout(
    shared: &Shared,
    pid: u32,
    stdout: ChildStdout,
    hello_tx: oneshot::Sender<Hello>,
    child: &Mutex<Child>,
    stderr_done: &mpsc::Receiver<()>,
) {
    let name = &shared.name;
    let mut r = BufReader::new(stdout);
    let mut buf = Vec::new();
    let mut hello_tx = Some(hello_tx);
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("executor {name}[{pid}]: reading its stdout: {e}");
                break;
            }
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let msg = serde_json::from_str::<FromExecutor>(line);
        if let Some(tx) = hello_tx.take() {
            let said = match msg {
                Ok(FromExecutor::Hello {
                    protocol,
                    name: who,
                    version,
                }) => {
                    if protocol == PROTOCOL_VERSION {
                        let who = match (who, version) {
                            (Some(n), Some(v)) => format!("{n} {v}"),
                            (Some(n), None) => n,
                            _ => "hello".to_string(),
                        };
                        Ok(who)
                    } else {
                        Err(format!(
                            "it speaks executor protocol version {protocol}, this jobctl speaks version {PROTOCOL_VERSION}"
                        ))
                    }
                }
                _ => Err(format!(
                    "its first line is not a hello of protocol version {PROTOCOL_VERSION}: {}",
                    clip(line)
                )),
            };
            let refused = said.is_err();
            let _ = tx.send(said);
            if refused {
                break;
            }
            continue;
        }
        match msg {
            Ok(m) => shared.dispatch(m),
            Err(e) => tracing::warn!(
                "executor {name}[{pid}]: a line that is not a message ({e}): {}",
                clip(line)
            ),
        }
    }
    drop(r);
    let status = reap(child);
    // Its last stderr line says why, if it said anything.
    let _ = stderr_done.recv_timeout(EXIT_GRACE);
    let why = exit_reason(shared, status);
    if let Some(tx) = hello_tx.take() {
        let _ = tx.send(Err(format!(
            "it exited before its hello: {}",
            why.trim_start_matches(&format!("executor {name} exited: "))
        )));
    }
    shared.close(why);
}

/// Why the jobs of a process that ended fail: `executor NAME exited:
/// STATUS`, with its last stderr line.
fn exit_reason(shared: &Shared, status: Option<ExitStatus>) -> String {
    let why = format!("executor {} exited: {}", shared.name, describe(status));
    match lock(&shared.last_stderr).take() {
        Some(last) => format!("{why} (its last stderr line: {})", clip(&last)),
        None => why,
    }
}

/// Watches for the process's exit, for an executable whose stdout
/// outlives it (held by a job it left running): the stdout reader, which
/// sees the end first otherwise, is given [`EXIT_GRACE`] to close the
/// table before this does.
fn watch_exit(shared: &Shared, child: &Mutex<Child>) {
    loop {
        std::thread::sleep(WATCH_EVERY);
        if lock(&shared.table).closed.is_some() {
            return;
        }
        match lock(child).try_wait() {
            Ok(None) => continue,
            Ok(Some(status)) => {
                let begin = Instant::now();
                while begin.elapsed() < EXIT_GRACE {
                    if lock(&shared.table).closed.is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                shared.close(exit_reason(shared, Some(status)));
                return;
            }
            Err(_) => return,
        }
    }
}

/// Waits for the process, killing it if it outlives its stdout by more
/// than [`EXIT_GRACE`].
fn reap(child: &Mutex<Child>) -> Option<ExitStatus> {
    let begin = Instant::now();
    loop {
        {
            let mut c = lock(child);
            match c.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if begin.elapsed() > EXIT_GRACE => {
                    let _ = c.kill();
                    return c.wait().ok();
                }
                Ok(None) => {}
                Err(_) => return None,
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An exit status as a reason's words: `exit status 1`, `killed by signal
/// 9 (SIGKILL)`.
fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => JobFailure::signaled(sig).reason,
            (None, None) => s.to_string(),
        },
        None => "its status is unknown".to_string(),
    }
}

/// At most 200 characters of `s`, for messages.
fn clip(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[async_trait]
impl JobExecutor for ExecutableExecutor {
    fn type_name(&self) -> &str {
        &self.name
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        if spec.payload.is_some() {
            return Err(JobFailure::new(format!(
                "executor {}: an in-process payload cannot be handed to an executable",
                self.name
            )));
        }
        let ctx = Arc::new(ctx);
        let start = line(&start_line(
            &self.name,
            &spec,
            ctx.instance_id().to_string(),
        ));
        drop(spec);
        let mut opened = self.open(start, &ctx).await?;
        let lost = || {
            JobFailure::new(format!(
                "executor {}: the job was lost (its process went away)",
                self.name
            ))
        };
        tokio::select! {
            r = &mut opened.rx => return r.unwrap_or_else(|_| Err(lost())),
            _ = ctx.stopped() => {}
        }
        let _ = opened.tx.send(line(&ToExecutor::Stop {
            job: opened.job.clone(),
        }));
        match tokio::time::timeout(STOP_GRACE, &mut opened.rx).await {
            Ok(r) => r.unwrap_or_else(|_| Err(lost())),
            Err(_) => Err(JobFailure::new(format!(
                "executor {} did not end the job within {} s of its stop",
                self.name,
                STOP_GRACE.as_secs()
            ))),
        }
    }
}
