//! Detached remote jobs: the command runs on the host under a small
//! supervisor (`supervisor.sh`: its own session and process group, output
//! and exit status in files under `~/.cache/jobctl/jobs/<instance id>/`,
//! mode 0700), so it outlives the connection and the session. This side
//! streams the files while it can; a lost connection makes the job
//! Disconnected, and the host's thread re-attaches with a backoff (1 s
//! doubling to 60 s) or at once when asked ([`Wakers::connect_now`]).
//!
//! The job's checkpoint (stored with its records, see
//! `JobContext::emit_checkpointed`) holds how many bytes of each file were
//! stored, and whose SSH identity the job uses: a re-attach, in this
//! session or a later one, resumes at those offsets, so every byte reaches
//! the job exactly once. Once the job's end was read in full, or it was
//! stopped, its folder is removed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{JobContext, JobFailure};
use serde::{Deserialize, Serialize};

use crate::attach::{run_op, tail, TailEnd, TailParams, GONE};
use crate::config::{self, Resolved};
use crate::connect::{self, Connected};
use crate::options::SshOptions;
use crate::spec::{Caller, HostTask};

/// The first wait before re-attaching; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two re-attach attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The pause between two connects of a stop.
const STOP_RETRY: Duration = Duration::from_secs(1);
/// How often a waiting thread looks at stop requests.
const SLICE: Duration = Duration::from_millis(50);

/// What a detached child keeps in its checkpoint.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Bytes of the remote stdout and stderr files stored so far.
    offsets: [u64; 2],
    /// Whose SSH identity the job uses.
    #[serde(default)]
    pub(crate) caller: Caller,
    /// Whether its folder on the host was seen deleted (once its end was
    /// read, or by its stop): nothing is left there to clean up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) cleaned: bool,
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A stored checkpoint; an unreadable one reads as a fresh one.
    pub(crate) fn decode(bytes: &[u8]) -> Checkpoint {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

/// Stores that the job's folder is gone from its host.
fn cleaned(ctx: &JobContext, cp: &Checkpoint) {
    let done = Checkpoint {
        offsets: cp.offsets,
        caller: cp.caller.clone(),
        cleaned: true,
    };
    ctx.emit_checkpointed(Vec::new(), done.encode());
}

/// Wakes a detached child's thread out of its backoff.
#[derive(Debug)]
pub(crate) struct Wake {
    asked: Mutex<bool>,
    cv: Condvar,
    attempts: tokio::sync::watch::Sender<u64>,
    /// Whether the child streams its files now (nothing to re-attach).
    attached: AtomicBool,
}

impl Wake {
    fn new() -> Self {
        Wake {
            asked: Mutex::new(false),
            cv: Condvar::new(),
            attempts: tokio::sync::watch::Sender::new(0),
            attached: AtomicBool::new(false),
        }
    }

    /// Waits up to `limit`, or until woken or a stop is requested.
    fn wait(&self, limit: Duration, ctx: &JobContext) {
        let until = Instant::now() + limit;
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        while !*asked && !ctx.stop_requested() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            asked = self
                .cv
                .wait_timeout(asked, left.min(SLICE))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *asked = false;
    }

    /// Tells those waiting for an attempt that one was made.
    fn attempted(&self) {
        self.attempts.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The detached children running now, by instance id.
#[derive(Debug, Default)]
pub(crate) struct Wakers {
    map: Mutex<HashMap<String, Arc<Wake>>>,
}

impl Wakers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Wake>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a child; it is forgotten when the guard drops.
    pub(crate) fn register(self: &Arc<Self>, id: String) -> (Arc<Wake>, Registered) {
        let wake = Arc::new(Wake::new());
        self.lock().insert(id.clone(), Arc::clone(&wake));
        (
            wake,
            Registered {
                wakers: Arc::clone(self),
                id,
            },
        )
    }

    /// Whether a detached child with this instance id runs here.
    pub(crate) fn runs(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Whether that child streams its files now (is connected).
    pub(crate) fn attached(&self, id: &str) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|w| w.attached.load(Ordering::SeqCst))
    }

    /// Makes the child re-attach now if it waits to; resolves once its
    /// next attempt was made, or after `limit`. `false`: no such child runs.
    pub(crate) async fn connect_now(&self, id: &str, limit: Duration) -> bool {
        let Some(wake) = self.lock().get(id).cloned() else {
            return false;
        };
        if wake.attached.load(Ordering::SeqCst) {
            return true;
        }
        let mut rx = wake.attempts.subscribe();
        rx.mark_unchanged();
        *wake.asked.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.cv.notify_all();
        let _ = tokio::time::timeout(limit, rx.changed()).await;
        true
    }
}

/// Forgets a registered child when dropped.
pub(crate) struct Registered {
    wakers: Arc<Wakers>,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.wakers.lock().remove(&self.id);
    }
}

/// How a host's detached child reaches its host: the executor's options
/// with the detached keepalive (a dead link must show soon).
pub(crate) fn resolve(task: &HostTask, options: &SshOptions) -> Result<Resolved, JobFailure> {
    let mut o = options.clone();
    o.keepalive_interval = Some(options.detached_keepalive_interval);
    o.keepalive_count = Some(options.detached_keepalive_count);
    config::resolve(&task.host, &o).map_err(|e| e.to_failure())
}

/// One detached child, start (`launch`) or re-attach to its end, on its
/// host's own thread.
pub(crate) fn drive(
    task: &HostTask,
    options: &SshOptions,
    ctx: &JobContext,
    wake: &Wake,
    launch: bool,
) -> Result<(), JobFailure> {
    let mut cp = Checkpoint {
        offsets: [0, 0],
        caller: task.caller.clone(),
        cleaned: false,
    };
    if !launch {
        if let Some(stored) = ctx
            .checkpoint()
            .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).ok())
        {
            cp = stored;
        }
    }
    // The identity of the user who started the job, whoever started this
    // session: the executor's own settings first, then the caller's.
    let mut o = options.clone();
    o.home = o.home.or_else(|| cp.caller.home.clone());
    o.agent_socket = o.agent_socket.or_else(|| cp.caller.agent_socket.clone());
    let r = resolve(task, &o)?;
    let id = ctx.instance_id().to_string();
    let host = r.written.clone();
    let op_timeout = r.connect_timeout.max(Duration::from_secs(10));
    let mut conn: Option<Connected> = None;
    // Why the start was not confirmed, when the connection failed after
    // the command may have started: the folder then tells.
    let mut unconfirmed: Option<String> = None;
    if launch {
        let c = connect::connect(&r).map_err(|e| e.to_failure())?;
        if ctx.stop_requested() {
            connect::close(c, true);
            return Ok(());
        }
        let started = run_op(
            &c.session,
            "start",
            &id,
            &[],
            task.command.as_bytes(),
            op_timeout,
        );
        match started {
            Ok(a) if a.status == 0 => conn = Some(c),
            Ok(a) => {
                connect::close(c, true);
                return Err(JobFailure::new(format!(
                    "host {host}: cannot start the detached job (status {}): {}",
                    a.status,
                    String::from_utf8_lossy(&a.stderr).trim()
                )));
            }
            Err(e) => {
                connect::close(c, false);
                unconfirmed = Some(e);
            }
        }
        // (Perhaps) launched: from now on a session re-attaches rather
        // than starts.
        ctx.emit_checkpointed(Vec::new(), cp.encode());
    }
    let params = TailParams {
        id: &id,
        keepalive: r.keepalive_interval,
        // keepalive_send counts whole seconds: allow one more.
        dead_after: r.keepalive_interval * r.keepalive_count + Duration::from_secs(1),
        timeout: op_timeout,
    };
    let caller = cp.caller.clone();
    let encode = move |offsets: [u64; 2]| {
        Checkpoint {
            offsets,
            caller: caller.clone(),
            cleaned: false,
        }
        .encode()
    };
    let mut backoff = FIRST_BACKOFF;
    // Whether the job's group was sent SIGSTOP last (a suspend), across
    // connections; unknown for a job taken over, which is sent what its
    // row says at its first attach (SIGSTOP again, or SIGCONT), to no harm.
    let mut paused = launch.then_some(false);
    // Whether the job shows Disconnected (said once per loss).
    let mut down = false;
    loop {
        if ctx.stop_requested() {
            wake.attempted();
            // `jobctl stop --grace`; the supervisor's first signal is TERM.
            let grace = ctx.stop_options().grace.unwrap_or(options.stop_grace);
            let mut removed = false;
            let stopped = stop(conn, &r, &id, (grace, op_timeout), &mut removed);
            if removed {
                cleaned(ctx, &cp);
            }
            return stopped;
        }
        let c = match conn.take() {
            Some(c) => c,
            None => match connect::connect(&r) {
                Ok(c) => c,
                Err(e) => {
                    disconnected(ctx, &host, e.message(), &mut down);
                    wake.attempted();
                    wake.wait(backoff, ctx);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        if !ctx.stop_requested() && ctx.set_disconnected(false).is_ok() {
            down = false;
        }
        wake.attached.store(true, Ordering::SeqCst);
        wake.attempted();
        let end = tail(&c, &params, &mut cp.offsets, &mut paused, ctx, &encode);
        wake.attached.store(false, Ordering::SeqCst);
        match end {
            TailEnd::Done => match finish(c, &r, &id, ctx, op_timeout) {
                Ok((result, removed)) => {
                    if removed {
                        cleaned(ctx, &cp);
                    }
                    return result;
                }
                Err((c, why)) => {
                    connect::close(c, false);
                    disconnected(ctx, &host, &why, &mut down);
                    wake.wait(FIRST_BACKOFF, ctx);
                }
            },
            TailEnd::Gone => {
                connect::close(c, true);
                return Err(JobFailure::new(match unconfirmed {
                    Some(why) => format!(
                        "host {host}: the detached job did not start (connection lost while starting it: {why})"
                    ),
                    None => format!(
                        "host {host}: the detached job's folder ~/.cache/jobctl/jobs/{id} is gone"
                    ),
                }));
            }
            TailEnd::Stop => conn = Some(c),
            TailEnd::Lost(why) => {
                connect::close(c, false);
                disconnected(ctx, &host, &why, &mut down);
                backoff = FIRST_BACKOFF;
                wake.wait(backoff, ctx);
                backoff *= 2;
            }
        }
    }
}

/// Marks the job Disconnected, saying so once per loss (`down`).
fn disconnected(ctx: &JobContext, host: &str, why: &str, down: &mut bool) {
    if ctx.stop_requested() || *down {
        return;
    }
    if ctx.set_disconnected(true).is_ok() {
        *down = true;
        ctx.warning(format!(
            "host {host}: disconnected ({why}); the job goes on there, re-attaching"
        ));
    }
}

/// Everything was read: the exit status, then the folder goes (with it,
/// `true`). `Err`: the connection failed first (the caller re-attaches and
/// comes back).
fn finish(
    c: Connected,
    r: &Resolved,
    id: &str,
    ctx: &JobContext,
    timeout: Duration,
) -> Result<(Result<(), JobFailure>, bool), (Connected, String)> {
    let status = match run_op(&c.session, "status", id, &[], b"", timeout) {
        Ok(a) => a,
        Err(why) => return Err((c, why)),
    };
    let text = String::from_utf8_lossy(&status.stdout);
    let result = if status.status != 0 {
        Err(JobFailure::new(format!(
            "host {}: cannot read the detached job's exit status (status {})",
            r.written, status.status
        )))
    } else {
        match text.trim().parse::<i32>() {
            Ok(0) => {
                ctx.set_exit_code(0);
                Ok(())
            }
            Ok(code) => {
                ctx.set_exit_code(code);
                Err(JobFailure::exited(code))
            }
            Err(_) => Err(JobFailure::new(format!(
                "host {}: the detached job's status file holds {:?}",
                r.written,
                text.trim()
            ))),
        }
    };
    let mut removed = false;
    if result.is_ok() || status_read(&result) {
        let answer = run_op(&c.session, "remove", id, &[], b"", timeout);
        removed = matches!(answer, Ok(a) if a.status == 0);
    }
    connect::close(c, true);
    Ok((result, removed))
}

/// Whether a result carries the job's own exit status (so its folder has
/// served its purpose).
fn status_read(result: &Result<(), JobFailure>) -> bool {
    matches!(result, Err(f) if f.exit_code.is_some())
}

/// Ends the remote process group (SIGTERM, SIGKILL after the grace) and
/// removes the folder (then sets `removed`), over `conn` or a new
/// connection.
fn stop(
    conn: Option<Connected>,
    r: &Resolved,
    id: &str,
    (grace, timeout): (Duration, Duration),
    removed: &mut bool,
) -> Result<(), JobFailure> {
    let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    let args = [secs.to_string()];
    let limit = timeout + grace;
    let attempt = |c: &Connected| run_op(&c.session, "stop", id, &args, b"", limit);
    let mut answer = None;
    if let Some(c) = conn {
        answer = attempt(&c).ok();
        connect::close(c, answer.is_some());
    }
    let answer = match answer {
        Some(a) => a,
        None => {
            let c = connect_for_stop(r).map_err(|e| {
                JobFailure::new(format!(
                    "{}; the detached job may still run there",
                    e.to_failure().reason
                ))
            })?;
            let a = attempt(&c);
            connect::close(c, a.is_ok());
            a.map_err(|e| {
                JobFailure::new(format!(
                    "host {}: cannot stop the detached job ({e}); it may still run there",
                    r.written
                ))
            })?
        }
    };
    *removed = matches!(answer.status, 0 | GONE);
    match answer.status {
        0 if answer.stdout.starts_with(b"killed") => Err(JobFailure::new(format!(
            "host {}: did not end within {secs}s of SIGTERM: killed with SIGKILL",
            r.written
        ))),
        0 | GONE => Ok(()),
        n => Err(JobFailure::new(format!(
            "host {}: stopping the detached job failed (status {n}): {}",
            r.written,
            String::from_utf8_lossy(&answer.stderr).trim()
        ))),
    }
}

/// Connects for a stop: a host that is down now may be back within the
/// connect timeout, so a refused or unroutable connect is tried again
/// each second until then.
fn connect_for_stop(r: &Resolved) -> Result<Connected, crate::RemoteError> {
    let until = Instant::now() + r.connect_timeout;
    loop {
        match connect::connect(r) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() + STOP_RETRY >= until => return Err(e),
            Err(_) => std::thread::sleep(STOP_RETRY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_and_an_old_one_without_caller_too() {
        let cp = Checkpoint {
            offsets: [12, 3],
            caller: Caller {
                home: Some("/home/u".into()),
                agent_socket: None,
            },
            cleaned: false,
        };
        let back: Checkpoint = serde_json::from_slice(&cp.encode()).expect("reads back");
        assert_eq!(back.offsets, [12, 3]);
        assert_eq!(back.caller, cp.caller);
        let bare: Checkpoint = serde_json::from_slice(br#"{"offsets":[5,0]}"#).expect("bare");
        assert_eq!(bare.offsets, [5, 0]);
        assert!(bare.caller.is_empty());
    }
}
