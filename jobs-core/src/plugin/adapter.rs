//! The host side of a loaded plugin: safe calls over its function table,
//! and the [`JobExecutor`] that runs jobs through it.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::abi::{
    ByteBuf, PluginVTable, WakeFn, ERR, OK, PULL_AGAIN, PULL_BLOCKED, PULL_FINISHED, PULL_LOCATION,
    PULL_NOT_STARTED, PULL_RUNNING, PULL_STATUS_MASK,
};
use super::wire::{self, WireDescribe, WireSpec, WireStatus};
use crate::{JobContext, JobExecutor, JobFailure, JobInfo, JobSpec, JobState, SuspendError};

/// A loaded plugin's instance and function table, after the header check.
#[derive(Clone, Copy)]
pub(crate) struct PluginFns {
    instance: *const c_void,
    vtable: &'static PluginVTable,
}

// SAFETY: the plugin's functions may be called from any thread (the
// contract of the table), the instance pointer is only passed back to them,
// and the library is never unloaded, so both stay valid for the process.
unsafe impl Send for PluginFns {}
// SAFETY: as for `Send`: shared use only passes the pointers to the plugin.
unsafe impl Sync for PluginFns {}

impl PluginFns {
    /// # Safety
    /// `vtable` and `instance` come from a header that passed the loader's
    /// checks, of a library that stays loaded.
    pub(crate) unsafe fn new(instance: *const c_void, vtable: &'static PluginVTable) -> Self {
        PluginFns { instance, vtable }
    }

    /// Calls `f` with an output buffer, then hands its return code and the
    /// buffer's bytes to `read` before giving the buffer back to the plugin.
    fn with_buf<R>(
        &self,
        f: impl FnOnce(*mut ByteBuf) -> i32,
        read: impl FnOnce(i32, &[u8]) -> R,
    ) -> R {
        let mut buf = ByteBuf::empty();
        let code = f(&mut buf);
        let bytes: &[u8] = if buf.ptr.is_null() || buf.len == 0 {
            &[]
        } else {
            // SAFETY: the plugin wrote a buffer of `len` initialized bytes
            // that stays valid until it is freed below.
            unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }
        };
        let out = read(code, bytes);
        // SAFETY: the buffer came from this plugin and is freed once, here.
        unsafe { (self.vtable.free_buf)(buf) };
        out
    }

    fn text_result(code: i32, bytes: &[u8]) -> Result<Vec<u8>, String> {
        match code {
            OK => Ok(bytes.to_vec()),
            _ => Err(String::from_utf8_lossy(bytes).into_owned()),
        }
    }

    pub(crate) fn describe(&self) -> Result<WireDescribe, String> {
        let bytes = self.with_buf(
            // SAFETY: the instance is the header's; `out` is a live buffer.
            |out| unsafe { (self.vtable.describe)(self.instance, out) },
            Self::text_result,
        )?;
        serde_json::from_slice(&bytes).map_err(|e| format!("a malformed description: {e}"))
    }

    fn location(&self, spec: &[u8]) -> Result<String, String> {
        let bytes = self.with_buf(
            // SAFETY: the instance is the header's; `spec` is borrowed for
            // the call; `out` is a live buffer.
            |out| unsafe { (self.vtable.location)(self.instance, spec.as_ptr(), spec.len(), out) },
            Self::text_result,
        )?;
        String::from_utf8(bytes).map_err(|_| "a location that is not UTF-8".into())
    }

    fn resumable(&self, info: &[u8]) -> Result<bool, String> {
        self.with_buf(
            // SAFETY: the instance is the header's; `info` is borrowed for
            // the call; `err` is a live buffer.
            |err| unsafe { (self.vtable.resumable)(self.instance, info.as_ptr(), info.len(), err) },
            |code, bytes| match code {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(String::from_utf8_lossy(bytes).into_owned()),
            },
        )
    }

    /// Opens a job through `open` (the table's `start` or `resume`, which
    /// take the same arguments) over `bytes` (a spec or a job info).
    fn open(&self, open: OpenFn, bytes: &[u8], notify: Arc<Notify>) -> Result<ImportedJob, String> {
        let mut handle: *mut c_void = std::ptr::null_mut();
        let data = Arc::as_ptr(&notify) as *const c_void;
        self.with_buf(
            // SAFETY: the instance is the header's; `bytes` is borrowed for
            // the call; `data` stays valid until `free_job` returned (the
            // `ImportedJob` below holds the `Arc` and frees the job first).
            |err| unsafe {
                open(
                    self.instance,
                    bytes.as_ptr(),
                    bytes.len(),
                    Some(wake),
                    data,
                    &mut handle,
                    err,
                )
            },
            Self::text_result,
        )?;
        if handle.is_null() {
            return Err("the plugin returned no job handle".into());
        }
        Ok(ImportedJob {
            fns: *self,
            handle,
            calls: Mutex::new(()),
            _notify: notify,
        })
    }
}

/// The type of the table's `start` and `resume`.
type OpenFn = unsafe extern "C" fn(
    *const c_void,
    *const u8,
    usize,
    Option<WakeFn>,
    *const c_void,
    *mut *mut c_void,
    *mut ByteBuf,
) -> i32;

/// The host's wake-up: `data` is the `Notify` of a running job.
extern "C" fn wake(data: *const c_void) {
    // SAFETY: `data` is `Arc::as_ptr` of a `Notify` that the job's
    // `ImportedJob` keeps alive until the plugin promised not to call again.
    let notify = unsafe { &*(data as *const Notify) };
    // `notify_one` does not panic; a panic must not unwind into the plugin.
    let _ = std::panic::catch_unwind(|| notify.notify_one());
}

/// A job running inside a plugin, as the host holds it: the plugin's handle
/// on it. Releases the job when dropped.
struct ImportedJob {
    fns: PluginFns,
    handle: *mut c_void,
    /// Held during each call about the job: the table's promise that such
    /// calls never overlap, now that `suspend` comes from another task
    /// than the one that pulls.
    calls: Mutex<()>,
    _notify: Arc<Notify>,
}

// SAFETY: the plugin's job functions may be called from any thread; the
// handle is only passed back to them.
unsafe impl Send for ImportedJob {}
// SAFETY: as for `Send`.
unsafe impl Sync for ImportedJob {}

impl ImportedJob {
    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pulls pending records into the context; returns the `PULL_*` status.
    fn pull(&self, ctx: &JobContext) -> Result<i32, String> {
        let _g = self.lock();
        self.fns.with_buf(
            // SAFETY: `handle` is live until `drop`; `out` is a live buffer.
            |out| unsafe { (self.fns.vtable.pull)(self.handle, 0, out) },
            |code, bytes| {
                if code == ERR {
                    return Err(String::from_utf8_lossy(bytes).into_owned());
                }
                for record in wire::decode(bytes)? {
                    ctx.emit(record);
                }
                Ok(code)
            },
        )
    }

    fn status(&self) -> Result<WireStatus, String> {
        let _g = self.lock();
        let bytes = self.fns.with_buf(
            // SAFETY: `handle` is live until `drop`; `out` is a live buffer.
            |out| unsafe { (self.fns.vtable.status)(self.handle, out) },
            PluginFns::text_result,
        )?;
        serde_json::from_slice(&bytes).map_err(|e| format!("a malformed status: {e}"))
    }

    fn stop(&self) {
        let _g = self.lock();
        // SAFETY: `handle` is live until `drop`.
        unsafe { (self.fns.vtable.stop)(self.handle) };
    }

    /// The table's `suspend` (`paused`) or `resume_suspended`.
    fn pause(&self, paused: bool) -> Result<(), String> {
        let vt = self.fns.vtable;
        let f = if paused {
            vt.suspend
        } else {
            vt.resume_suspended
        };
        let Some(f) = f else {
            return Err("the plugin has no suspend functions".into());
        };
        let _g = self.lock();
        self.fns
            // SAFETY: `handle` is live until `drop`; `err` is a live buffer.
            .with_buf(|err| unsafe { f(self.handle, err) }, PluginFns::text_result)
            .map(|_| ())
    }
}

impl Drop for ImportedJob {
    fn drop(&mut self) {
        // SAFETY: `handle` came from `start` and is released once, here;
        // `_notify` is dropped only after this returns.
        unsafe { (self.fns.vtable.free_job)(self.handle) };
    }
}

/// Removes a job from its executor's registry when dropped.
struct Registered<'a> {
    executor: &'a PluginExecutor,
    key: u128,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.executor.jobs().remove(&self.key);
    }
}

/// Runs jobs through a loaded plugin: to a session, an executor like any
/// other.
pub(crate) struct PluginExecutor {
    pub(crate) fns: PluginFns,
    pub(crate) type_name: String,
    pub(crate) default_throttle: Option<usize>,
    pub(crate) reports_start: bool,
    /// The description says so and the table has both functions.
    pub(crate) can_suspend: bool,
    /// The running jobs by instance id, for `suspend` and `resume_suspended`.
    jobs: Mutex<HashMap<u128, Arc<ImportedJob>>>,
}

impl PluginExecutor {
    /// The executor of a plugin that described itself as `described`.
    pub(crate) fn new(fns: PluginFns, described: WireDescribe) -> Self {
        let vt = fns.vtable;
        PluginExecutor {
            fns,
            type_name: described.type_name,
            default_throttle: described.default_throttle,
            reports_start: described.reports_start,
            can_suspend: described.can_suspend
                && vt.suspend.is_some()
                && vt.resume_suspended.is_some(),
            jobs: Mutex::default(),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<u128, Arc<ImportedJob>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows an opened job to its end, registered meanwhile so that a
    /// suspend reaches it. A job suspended before it was opened is paused
    /// at once.
    async fn follow(
        &self,
        job: ImportedJob,
        notify: &Notify,
        ctx: &JobContext,
        reports_start: bool,
    ) -> Result<(), JobFailure> {
        let job = Arc::new(job);
        let key = ctx.instance_id().as_u128();
        {
            let mut jobs = self.jobs();
            jobs.insert(key, Arc::clone(&job));
            if self.can_suspend && ctx.stop_token().is_paused() {
                if let Err(m) = job.pause(true) {
                    ctx.warning(format!("the plugin could not suspend the job: {m}"));
                }
            }
        }
        // Unregistered however `drive` ends, dropped future included: the
        // registry's reference must not keep the plugin's job from being
        // released (and so stopped) with it.
        let _registered = Registered {
            executor: self,
            key,
        };
        drive(&job, notify, ctx, reports_start).await
    }

    /// Suspends or resumes the job of `ctx` through the table, on a
    /// blocking thread (the plugin returns once the work is paused).
    async fn pause(&self, ctx: &JobContext, paused: bool) -> Result<(), SuspendError> {
        if !self.can_suspend {
            return Err(SuspendError::unsupported(self.type_name.clone()));
        }
        let Some(job) = self.jobs().get(&ctx.instance_id().as_u128()).cloned() else {
            // Not opened yet: `follow` pauses it as it registers.
            return Ok(());
        };
        tokio::task::spawn_blocking(move || job.pause(paused))
            .await
            .map_err(|e| SuspendError::Failed(format!("the plugin call panicked: {e}")))?
            .map_err(SuspendError::Failed)
    }
}

fn failure(what: &str, msg: String) -> JobFailure {
    JobFailure::new(format!("{what}: {msg}"))
}

#[async_trait]
impl JobExecutor for PluginExecutor {
    fn type_name(&self) -> &str {
        &self.type_name
    }

    fn location(&self, spec: &JobSpec) -> String {
        serde_json::to_vec(&WireSpec::from_spec(spec))
            .map_err(|e| e.to_string())
            .and_then(|json| self.fns.location(&json))
            .unwrap_or_else(|_| "localhost".to_string())
    }

    fn default_throttle(&self) -> Option<usize> {
        self.default_throttle
    }

    fn reports_start(&self) -> bool {
        self.reports_start
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        if spec.payload.is_some() {
            return Err(JobFailure::new(
                "an in-process payload cannot be passed to a plugin executor",
            ));
        }
        let mut wire = WireSpec::from_spec(&spec);
        // The plugin's job takes the host's instance id.
        wire.instance_id = Some(ctx.instance_id());
        let json = serde_json::to_vec(&wire)
            .map_err(|e| failure("cannot encode the job spec", e.to_string()))?;
        let notify = Arc::new(Notify::new());
        let job = self
            .fns
            .open(self.fns.vtable.start, &json, Arc::clone(&notify))
            .map_err(|m| failure("the plugin could not start the job", m))?;
        self.follow(job, &notify, &ctx, self.reports_start).await
    }

    fn resumable(&self, info: &JobInfo) -> bool {
        serde_json::to_vec(info)
            .map_err(|e| e.to_string())
            .and_then(|json| self.fns.resumable(&json))
            .unwrap_or(false)
    }

    async fn resume(&self, info: JobInfo, ctx: JobContext) -> Result<(), JobFailure> {
        let json = serde_json::to_vec(&info)
            .map_err(|e| failure("cannot encode the job info", e.to_string()))?;
        let notify = Arc::new(Notify::new());
        let job = self
            .fns
            .open(self.fns.vtable.resume, &json, Arc::clone(&notify))
            .map_err(|m| failure("the plugin could not resume the job", m))?;
        // A resumed job is Running from the start.
        self.follow(job, &notify, &ctx, false).await
    }

    fn can_suspend(&self) -> bool {
        self.can_suspend
    }

    async fn suspend(&self, ctx: &JobContext) -> Result<(), SuspendError> {
        self.pause(ctx, true).await
    }

    async fn resume_suspended(&self, ctx: &JobContext) -> Result<(), SuspendError> {
        self.pause(ctx, false).await
    }
}

/// Follows a plugin's job to its end: its records, start, Blocked and
/// location into `ctx`, a stop request to the plugin, and its end.
async fn drive(
    job: &ImportedJob,
    notify: &Notify,
    ctx: &JobContext,
    reports_start: bool,
) -> Result<(), JobFailure> {
    let mut stop_sent = false;
    let mut blocked = false;
    let mut started = !reports_start;
    loop {
        let code = job
            .pull(ctx)
            .map_err(|m| failure("the plugin failed to hand out records", m))?;
        let moved = code & PULL_LOCATION != 0;
        let code = code & PULL_STATUS_MASK;
        if !started && matches!(code, PULL_RUNNING | PULL_BLOCKED) {
            // A no-op once a stop was requested: the job stays as it is.
            let _ = ctx.set_running();
            started = true;
        }
        if moved {
            let status = job
                .status()
                .map_err(|m| failure("the plugin failed to report the job's location", m))?;
            // Fails only once the session is gone: nothing to show then.
            let _ = ctx.set_location(status.location);
        }
        match code {
            PULL_FINISHED => break,
            PULL_AGAIN => continue,
            PULL_NOT_STARTED => {}
            PULL_RUNNING | PULL_BLOCKED => {
                let now = code == PULL_BLOCKED;
                if now != blocked && !ctx.stop_requested() {
                    // Refused only while the job is Stopping: nothing to show then.
                    let _ = ctx.set_blocked(now);
                    blocked = now;
                }
            }
            other => {
                return Err(JobFailure::new(format!(
                    "the plugin answered with unknown status {other}"
                )))
            }
        }
        if stop_sent {
            notify.notified().await;
        } else {
            tokio::select! {
                _ = notify.notified() => {}
                _ = ctx.stopped() => {
                    job.stop();
                    stop_sent = true;
                }
            }
        }
    }
    let status = job
        .status()
        .map_err(|m| failure("the plugin failed to report the job's end", m))?;
    if let Some(code) = status.exit_code {
        ctx.set_exit_code(code);
    }
    if !status.location.is_empty() {
        let _ = ctx.set_location(status.location);
    }
    match (status.state, status.reason) {
        (JobState::Completed, _) | (JobState::Stopped, None) => Ok(()),
        (JobState::Failed, reason) => Err(JobFailure {
            reason: reason.unwrap_or_else(|| "failed".into()),
            exit_code: status.exit_code,
        }),
        (JobState::Stopped, Some(reason)) => Err(JobFailure::new(reason)),
        (state, _) => Err(JobFailure::new(format!(
            "the plugin's job ended in state {state}"
        ))),
    }
}
