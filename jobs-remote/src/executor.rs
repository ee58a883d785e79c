//! `SshExecutor`: a parent job per start that opens one child job per host;
//! each child drives its host's SSH session on a thread of its own.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use jobs_core::{
    async_trait, JobContext, JobExecutor, JobFailure, JobInfo, JobSpec, JobState, SuspendError,
};

use crate::config;
use crate::connect;
use crate::detached::{self, Wakers};
use crate::error::HostErr;
use crate::exec;
use crate::forget;
use crate::options::SshOptions;
use crate::pool::{Pool, PoolKey};
use crate::spec::{HostTask, Input, Params, RemoteSpec, TYPE_NAME};
use crate::spread;

/// Runs a shell line on remote hosts over SSH: `RemoteJob`.
///
/// A job whose params are a [`RemoteSpec`] is the parent: it opens one
/// child job per host (location = the host as written) and waits for them;
/// the session derives its state from theirs and throttles them by the
/// spec's child throttle. Each child connects, checks the host key,
/// authenticates, runs the command and streams stdout as Output and stderr
/// as Error records (byte-exact), on a dedicated OS thread: ssh2 is
/// blocking, and the async runtime never waits on it.
///
/// The executor (and its clones) own a pool of idle authenticated
/// connections: a child takes one for its host when there is one, and gives
/// it back when its command ended cleanly (see the crate docs and
/// [`SshOptions::pool_idle_timeout`]). Dropping the last clone closes them.
#[derive(Clone, Debug)]
pub struct SshExecutor {
    options: Arc<SshOptions>,
    pool: Arc<Pool>,
    /// The instance ids of running host jobs: the ones whose thread
    /// confirms a suspend (see [`SshExecutor::suspend`]).
    hosts: Arc<Mutex<HashSet<u128>>>,
    /// The batches spread over hosts (see `spread.rs`).
    spread: Arc<spread::Groups>,
    wakers: Arc<Wakers>,
}

impl Default for SshExecutor {
    fn default() -> Self {
        SshExecutor::with_options(SshOptions::default())
    }
}

impl SshExecutor {
    /// An executor with the default options.
    pub fn new() -> Self {
        SshExecutor::default()
    }

    /// An executor with these options.
    pub fn with_options(options: SshOptions) -> Self {
        SshExecutor {
            pool: Arc::new(Pool::new(&options)),
            options: Arc::new(options),
            hosts: Arc::default(),
            spread: Arc::default(),
            wakers: Arc::default(),
        }
    }

    /// The executor's options.
    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    /// How many authenticated connections are open and idle, kept for the
    /// next command to their host.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    /// Makes the detached child job with this instance id re-attach now
    /// if its connection is lost, and waits (up to `limit`) for that
    /// attempt. `false` if no detached child with that id runs here.
    pub async fn connect_now(&self, instance_id: &str, limit: std::time::Duration) -> bool {
        self.wakers.connect_now(instance_id, limit).await
    }

    /// Whether a detached child whose stored checkpoint is `checkpoint`
    /// may have left its folder on its host (it was launched, and its
    /// folder was not seen deleted): see [`SshExecutor::forget_detached`].
    pub fn detached_leftover(checkpoint: Option<&[u8]>) -> bool {
        forget::may_be_left(checkpoint)
    }

    /// For a removed detached child: ends what still runs of it on `host`
    /// and deletes its folder there (`instance_id` names it; `checkpoint`,
    /// its stored checkpoint, says whose SSH identity it used), on a thread
    /// of its own, best effort. Gives up after about `limit` (twice that
    /// at most). `Err`: why the folder may still be there.
    pub async fn forget_detached(
        &self,
        host: String,
        instance_id: String,
        checkpoint: Option<Vec<u8>>,
        limit: std::time::Duration,
    ) -> Result<(), String> {
        let options = Arc::clone(&self.options);
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("ssh {host} (cleanup)"))
            .spawn(move || {
                let r = forget::forget(&host, &instance_id, checkpoint.as_deref(), &options, limit);
                let _ = tx.send(r);
            })
            .map_err(|e| format!("cannot start a thread for the host: {e}"))?;
        match tokio::time::timeout(limit * 2, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the cleanup's thread ended without a result (it panicked)".into()),
            Err(_) => Err(format!("no answer within {}s", (limit * 2).as_secs())),
        }
    }

    /// Runs (`launch`) or re-attaches to a detached child on a thread of
    /// its own; the thread also carries out stop requests.
    async fn run_detached(
        &self,
        task: HostTask,
        ctx: JobContext,
        launch: bool,
    ) -> Result<(), JobFailure> {
        let options = self.caller_options(&task);
        let (wake, registered) = self.wakers.register(ctx.instance_id().to_string());
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("ssh {} (detached)", task.host))
            .spawn(move || {
                let r = detached::drive(&task, &options, &ctx, &wake, launch);
                drop(registered);
                let _ = tx.send(r);
            })
            .map_err(|e| JobFailure::new(format!("cannot start a thread for the host: {e}")))?;
        rx.await.unwrap_or_else(|_| {
            Err(JobFailure::new(
                "the host's SSH thread ended without a result (it panicked)",
            ))
        })
    }

    /// The executor's options completed by the job's caller.
    fn caller_options(&self, task: &HostTask) -> Arc<SshOptions> {
        task.caller.over(&self.options)
    }

    /// `input`: the spec's payload, else the input its params kept.
    async fn run_parent(
        &self,
        mut spec: RemoteSpec,
        input: Option<Input>,
        ctx: JobContext,
    ) -> Result<(), JobFailure> {
        if spec.hosts.is_empty() {
            return Err(JobFailure::new("no hosts given"));
        }
        // One copy, shared by the hosts' children.
        let input = input.or_else(|| spec.input.take().map(Input));
        if spec.detached && input.is_some() {
            return Err(JobFailure::new(
                "a detached remote job reads no input: its command's stdin is /dev/null on its host",
            ));
        }
        for host in &spec.hosts {
            if ctx.stop_requested() {
                break;
            }
            let task = HostTask {
                host: host.clone(),
                command: spec.command.clone(),
                caller: spec.caller.clone(),
                detached: spec.detached,
            };
            let params = serde_json::to_value(&task)
                .map_err(|e| JobFailure::new(format!("cannot encode the host's task: {e}")))?;
            let mut child = JobSpec::new("", spec.command.clone())
                .params(params)
                .location(host.clone())
                .detached(spec.detached);
            child.timeout = spec.timeout;
            child.timeout_shown = spec.timeout_shown.clone();
            if let Some(input) = &input {
                child.payload = Some(Box::new(input.clone()));
            }
            if let Err(e) = ctx.start_child(child) {
                if ctx.stop_requested() {
                    break;
                }
                return Err(JobFailure::new(format!(
                    "cannot start the job for host {host}: {e}"
                )));
            }
        }
        ctx.wait_children().await;
        Ok(())
    }

    async fn run_child(
        &self,
        task: HostTask,
        input: Option<Input>,
        ctx: JobContext,
    ) -> Result<(), JobFailure> {
        if task.detached {
            return self.run_detached(task, ctx, true).await;
        }
        let options = self.caller_options(&task);
        // Weak: a running command does not keep the pool of a dropped
        // executor alive; its connection then just closes.
        let pool = Arc::downgrade(&self.pool);
        let stop = ctx.stop_token();
        let started = Arc::new(AtomicBool::new(false));
        let started_in_thread = Arc::clone(&started);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let name = format!("ssh {}", task.host);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let input = input.as_ref().map(|i| &i.0[..]);
                let _ = tx.send(run_host(
                    &task,
                    input,
                    &options,
                    &pool,
                    &ctx,
                    &started_in_thread,
                ));
            })
            .map_err(|e| JobFailure::new(format!("cannot start a thread for the host: {e}")))?;
        let lost = || {
            Err(JobFailure::new(
                "the host's SSH thread ended without a result (it panicked)",
            ))
        };
        tokio::pin!(rx);
        tokio::select! {
            r = &mut rx => return r.unwrap_or_else(|_| lost()),
            _ = stop.stopped() => {}
        }
        // Stopped while connecting: nothing runs remotely yet, and the thread
        // will not start the command, so the job can end now rather than
        // after a connect timeout.
        if !started.load(Ordering::SeqCst) {
            return Ok(());
        }
        rx.await.unwrap_or_else(|_| lost())
    }
}

/// One host, start to end, on its own thread. `started` turns true just
/// before the command may start; the stop check that follows it pairs with
/// the async side's check of `started` after a stop.
fn run_host(
    task: &HostTask,
    input: Option<&[u8]>,
    options: &SshOptions,
    pool: &Weak<Pool>,
    ctx: &JobContext,
    started: &AtomicBool,
) -> Result<(), JobFailure> {
    let fail = |e: crate::RemoteError| e.to_failure();
    let resolved = config::resolve(&task.host, options).map_err(fail)?;
    if ctx.stop_requested() {
        return Ok(());
    }
    let key = PoolKey::of(&resolved);
    let he = HostErr {
        host: resolved.written.clone(),
    };
    let pooled = pool.upgrade().and_then(|p| p.take(&key));
    let reused = pooled.is_some();
    let conn = match pooled {
        Some(conn) => {
            connect::prepare(&conn, &resolved);
            conn
        }
        None => connect::connect(&resolved).map_err(fail)?,
    };
    started.store(true, Ordering::SeqCst);
    if ctx.stop_requested() {
        // Nothing ran on it: the connection is as good as before.
        give_back(pool, key, conn);
        return Ok(());
    }
    let (conn, channel) = match exec::open_channel(&conn.session, &he) {
        Ok(channel) => (conn, channel),
        Err(e) => {
            connect::close(conn, false);
            if !reused {
                return Err(fail(e));
            }
            // The pooled connection went stale (no channel opens on it, so
            // nothing ran): a fresh one, as if none had been pooled.
            let conn = connect::connect(&resolved).map_err(fail)?;
            if ctx.stop_requested() {
                give_back(pool, key, conn);
                return Ok(());
            }
            match exec::open_channel(&conn.session, &he) {
                Ok(channel) => (conn, channel),
                Err(e) => {
                    connect::close(conn, false);
                    return Err(fail(e));
                }
            }
        }
    };
    let channel = match exec::start(channel, &task.command, input.is_some(), &he) {
        Ok(channel) => channel,
        Err(e) => {
            connect::close(conn, false);
            return Err(fail(e));
        }
    };
    let (result, reusable) = exec::run(conn, channel, input, &resolved, ctx, options.stop_grace);
    if let Some(conn) = reusable {
        give_back(pool, key, conn);
    }
    result
}

/// Returns a clean connection to the pool, or closes it when the executor
/// is gone.
fn give_back(pool: &Weak<Pool>, key: PoolKey, conn: connect::Connected) {
    match pool.upgrade() {
        Some(p) => p.put(key, conn),
        None => connect::close(conn, true),
    }
}

#[async_trait]
impl JobExecutor for SshExecutor {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }

    async fn run(&self, mut spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let input = spec
            .payload
            .take()
            .and_then(|p| p.downcast::<Input>().ok())
            .map(|i| *i);
        if let Some(item) = spread::spec_of(&spec.params) {
            let options = item.caller.over(&self.options);
            let pool = Arc::downgrade(&self.pool);
            return spread::run(&self.spread, options, pool, item, ctx).await;
        }
        let params: Params = serde_json::from_value(spec.params).map_err(|e| {
            JobFailure::new(format!(
                "invalid RemoteJob parameters (expected hosts and a command): {e}"
            ))
        })?;
        match params {
            Params::Parent(remote) => self.run_parent(remote, input, ctx).await,
            Params::Child(task) => {
                let key = ctx.instance_id().as_u128();
                self.hosts_lock().insert(key);
                let result = self.run_child(task, input, ctx).await;
                self.hosts_lock().remove(&key);
                result
            }
        }
    }

    /// A detached remote job that was running: the parent waits for its
    /// children again, and each child that had started re-attaches.
    fn resumable(&self, info: &JobInfo) -> bool {
        info.detached
            && info.type_name.eq_ignore_ascii_case(TYPE_NAME)
            && (info.parent.is_none() || info.state != JobState::NotStarted)
    }

    async fn resume(&self, info: JobInfo, ctx: JobContext) -> Result<(), JobFailure> {
        if info.parent.is_none() {
            ctx.wait_children().await;
            return Ok(());
        }
        let task = HostTask {
            host: info.location.into(),
            command: info.command.into(),
            caller: Default::default(),
            detached: true,
        };
        self.run_detached(task, ctx, false).await
    }

    fn location(&self, spec: &JobSpec) -> String {
        if let Some(item) = spread::spec_of(&spec.params) {
            return item.hosts.join(",");
        }
        match serde_json::from_value::<Params>(spec.params.clone()) {
            Ok(Params::Parent(p)) => p.hosts.join(","),
            Ok(Params::Child(t)) => t.host,
            Err(_) => String::new(),
        }
    }

    /// A host's job is suspended with `kill -STOP` to its remote process
    /// group, sent over a second channel by the host's thread, and resumed
    /// with `kill -CONT`; a detached one's group is signalled by its
    /// supervisor, over a second channel of the connection that streams its
    /// files. (A parent is suspended through its children.)
    fn can_suspend(&self) -> bool {
        true
    }

    /// Waits until the host's thread sent the signal. A job whose run has
    /// not begun yet (or a parent that has opened no child yet: the
    /// session starts none while it is suspended) has nothing to confirm:
    /// its thread sends SIGSTOP as soon as the command reports its group.
    async fn suspend(&self, ctx: &JobContext) -> Result<(), SuspendError> {
        if !self.is_host(ctx) && !self.is_detached(ctx) {
            return Ok(());
        }
        confirmed(ctx, true).await
    }

    /// A detached job whose pause was not lifted (its session closes and
    /// lets suspended jobs go on) stays stopped on its host: the host's
    /// process group outlives the session as it is. One being stopped is
    /// continued by its stop. One that lost its connection is continued
    /// once its thread re-attaches.
    async fn resume_suspended(&self, ctx: &JobContext) -> Result<(), SuspendError> {
        if self.is_detached(ctx) {
            if ctx.stop_token().is_paused()
                || ctx.stop_requested()
                || !self.wakers.attached(&ctx.instance_id().to_string())
            {
                return Ok(());
            }
        } else if !self.is_host(ctx) {
            return Ok(());
        }
        confirmed(ctx, false).await
    }
}

impl SshExecutor {
    fn hosts_lock(&self) -> std::sync::MutexGuard<'_, HashSet<u128>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_host(&self, ctx: &JobContext) -> bool {
        self.hosts_lock().contains(&ctx.instance_id().as_u128())
    }

    /// Whether the job is a detached one's host child, run by this executor.
    fn is_detached(&self, ctx: &JobContext) -> bool {
        self.wakers.runs(&ctx.instance_id().to_string())
    }
}

/// How long a suspend or resume waits for the host's thread to have sent
/// the signal (it looks every poll tick; a command still connecting sends
/// it once it reported its process group).
const PAUSE_CONFIRM: std::time::Duration = std::time::Duration::from_secs(15);

/// Waits until the host's thread applied the pause as the session set it.
async fn confirmed(ctx: &JobContext, paused: bool) -> Result<(), SuspendError> {
    let what = if paused { "suspend" } else { "resume" };
    tokio::time::timeout(PAUSE_CONFIRM, ctx.stop_token().applied(paused))
        .await
        .map_err(|_| {
            SuspendError::Failed(format!(
                "the remote command did not take the {what} within {}s",
                PAUSE_CONFIRM.as_secs()
            ))
        })
}
