//! The plugin side: what [`export_executor!`](crate::export_executor)
//! expands to. The plugin runs its executor in a [`Session`] of its own, on
//! a runtime of its own; the functions of the table below start jobs there
//! and hand their records and states out as bytes.

use std::any::Any;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use super::abi::{
    ByteBuf, PluginHeader, PluginVTable, StrRef, WakeFn, ABI_VERSION, ERR, MAGIC, OK, PULL_AGAIN,
    PULL_BLOCKED, PULL_FINISHED, PULL_LOCATION, PULL_NOT_STARTED, PULL_RUNNING,
};
use super::wire::{self, WireDescribe, WireSpec, WireStatus};
use crate::error::chain;
use crate::{JobExecutor, JobId, JobInfo, JobState, ReceiveOptions, Session, SessionBuilder};

/// Most records handed out by one `pull`.
const PULL_LIMIT: usize = 4096;

/// A plugin's instance: how to build its executor, and, once built, the
/// executor with the session and runtime that drive it. Made by
/// [`export_executor!`](crate::export_executor); nothing runs until the
/// host's first call after the header check.
pub struct Export {
    make: fn() -> Arc<dyn JobExecutor>,
    state: OnceLock<Result<Plugged, String>>,
}

struct Plugged {
    session: Session,
    describe: Vec<u8>,
    executor: Arc<dyn JobExecutor>,
    // Declared last: dropped after the session (never, in practice: the
    // instance is a static).
    _runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("plugged", &self.state.get().map(|s| s.is_ok()))
            .finish_non_exhaustive()
    }
}

impl Export {
    /// An instance that builds its executor with `make` on first use.
    pub const fn new(make: fn() -> Arc<dyn JobExecutor>) -> Self {
        Export {
            make,
            state: OnceLock::new(),
        }
    }

    fn plugged(&self) -> Result<&Plugged, String> {
        let state = self.state.get_or_init(|| {
            catch_unwind(AssertUnwindSafe(|| self.plug())).unwrap_or_else(|p| Err(panic_message(p)))
        });
        state.as_ref().map_err(Clone::clone)
    }

    fn plug(&self) -> Result<Plugged, String> {
        let executor = (self.make)();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jobs-plugin")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the plugin's runtime: {e}"))?;
        let session = SessionBuilder::default()
            .runtime(runtime.handle().clone())
            // The host applies the type's throttle; the plugin runs what it gets.
            .throttle(executor.type_name(), usize::MAX)
            .build()
            .map_err(|e| format!("cannot start the plugin's session: {}", chain(&e)))?;
        session.register(Arc::clone(&executor));
        let describe = serde_json::to_vec(&WireDescribe {
            type_name: executor.type_name().to_string(),
            default_throttle: executor.default_throttle(),
            reports_start: executor.reports_start(),
            can_suspend: executor.can_suspend(),
        })
        .map_err(|e| e.to_string())?;
        Ok(Plugged {
            session,
            describe,
            executor,
            _runtime: runtime,
        })
    }
}

impl PluginHeader {
    /// The header of a plugin of this ABI version.
    pub const fn new(
        instance: &'static Export,
        plugin_name: &'static str,
        plugin_version: &'static str,
    ) -> Self {
        PluginHeader {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            header_size: std::mem::size_of::<PluginHeader>() as u32,
            vtable_size: std::mem::size_of::<PluginVTable>() as u32,
            reserved: 0,
            plugin_name: StrRef::from_static(plugin_name),
            plugin_version: StrRef::from_static(plugin_version),
            instance: instance as *const Export as *const c_void,
            vtable: &VTABLE,
        }
    }
}

static VTABLE: PluginVTable = PluginVTable {
    describe,
    location,
    start,
    resumable,
    resume,
    pull,
    status,
    stop,
    free_job,
    free_buf,
    suspend: Some(suspend),
    resume_suspended: Some(resume_suspended),
};

/// A job of the plugin's session, exported to the host behind an opaque
/// handle (an `Arc` turned into a pointer).
struct ExportedJob {
    session: Session,
    id: JobId,
    /// The host's wake-up; `None` once the host released the job.
    wake: Mutex<Option<(WakeFn, usize)>>,
    /// Bumped on every change, for `pull` calls that wait.
    tick: Mutex<u64>,
    ticked: Condvar,
    /// The location the host was last told of.
    location: Mutex<String>,
}

impl ExportedJob {
    fn notify(&self) {
        {
            let mut t = self.tick.lock().unwrap_or_else(|p| p.into_inner());
            *t = t.wrapping_add(1);
        }
        self.ticked.notify_all();
        let wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, data)) = *wake {
            // The lock is held during the call: `free_job` takes it, so no
            // call can happen once `free_job` returned.
            f(data as *const c_void);
        }
    }

    fn state(&self) -> Option<JobState> {
        self.session.inner.lock().state(self.id)
    }

    /// The state, and whether the location changed since the last call.
    fn state_and_moved(&self) -> (Option<JobState>, bool) {
        let t = self.session.inner.lock();
        let Some(info) = t.info(self.id) else {
            return (None, false);
        };
        let mut seen = self.location.lock().unwrap_or_else(|p| p.into_inner());
        let moved = *seen != info.location;
        if moved {
            *seen = info.location.to_string();
        }
        (Some(info.state), moved)
    }
}

fn panic_message(p: Box<dyn Any + Send>) -> String {
    format!("the plugin panicked: {}", crate::panic_message(p.as_ref()))
}

fn to_buf(bytes: Vec<u8>) -> ByteBuf {
    let mut v = std::mem::ManuallyDrop::new(bytes);
    ByteBuf {
        ptr: v.as_mut_ptr(),
        len: v.len(),
        cap: v.capacity(),
    }
}

/// The host's slot for a function's output buffer, if it gave one.
type Out<'a> = Option<&'a mut MaybeUninit<ByteBuf>>;

/// The host's slot for an output buffer, as a reference.
///
/// # Safety
/// `out` is null, or valid for a write of a `ByteBuf` for `'a`.
unsafe fn out_slot<'a>(out: *mut ByteBuf) -> Out<'a> {
    // SAFETY: as the caller promises; `MaybeUninit` asks for no initialized
    // value, and `as_mut` maps null to `None`.
    unsafe { out.cast::<MaybeUninit<ByteBuf>>().as_mut() }
}

/// The host's slot for a new job handle, as a reference.
///
/// # Safety
/// `job` is null, or valid for a write of a pointer for `'a`.
unsafe fn job_slot<'a>(job: *mut *mut c_void) -> Option<&'a mut MaybeUninit<*mut c_void>> {
    // SAFETY: as the caller promises; see `out_slot`.
    unsafe { job.cast::<MaybeUninit<*mut c_void>>().as_mut() }
}

/// Runs `f`, catching panics; writes its bytes (or the error) to `out`.
fn guarded(out: Out<'_>, f: impl FnOnce() -> Result<(i32, Vec<u8>), String>) -> i32 {
    let (code, bytes) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok((code, bytes))) => (code, bytes),
        Ok(Err(msg)) => (ERR, msg.into_bytes()),
        Err(p) => (ERR, panic_message(p).into_bytes()),
    };
    if let Some(out) = out {
        out.write(to_buf(bytes));
    }
    code
}

/// The host's input bytes, borrowed for the call.
///
/// # Safety
/// `ptr` is null, or valid for reads of `len` bytes for `'a`.
unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: as the caller promises.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// The plugin's instance behind the header's pointer.
///
/// # Safety
/// `instance` is null or the header's instance pointer: a `&'static Export`.
unsafe fn instance<'a>(instance: *const c_void) -> Result<&'a Export, String> {
    // SAFETY: as the caller promises; the host passes back what the header gave.
    unsafe { (instance as *const Export).as_ref() }.ok_or_else(|| "a null instance".to_string())
}

/// The job behind a handle.
///
/// # Safety
/// `job` is null or a handle from `start` not yet given to `free_job`.
unsafe fn job<'a>(job: *const c_void) -> Result<&'a ExportedJob, String> {
    // SAFETY: as the caller promises: it points to a live `ExportedJob`.
    unsafe { (job as *const ExportedJob).as_ref() }.ok_or_else(|| "a null job handle".to_string())
}

fn parse_spec(bytes: &[u8]) -> Result<crate::JobSpec, String> {
    serde_json::from_slice::<WireSpec>(bytes)
        .map(WireSpec::into_spec)
        .map_err(|e| format!("a malformed job spec: {e}"))
}

// Each function of the table below first turns the host's pointers into
// references and slices, as the table's contract allows, then runs safe code.

unsafe extern "C" fn describe(inst: *const c_void, out: *mut ByteBuf) -> i32 {
    // SAFETY: the table's contract: `out` is null or writable.
    let out = unsafe { out_slot(out) };
    // SAFETY: the table's contract: `inst` is the header's instance.
    let inst = unsafe { instance(inst) };
    guarded(out, || {
        let p = inst?.plugged()?;
        Ok((OK, p.describe.clone()))
    })
}

unsafe extern "C" fn location(
    inst: *const c_void,
    spec: *const u8,
    spec_len: usize,
    out: *mut ByteBuf,
) -> i32 {
    // SAFETY: the table's contract: `out` is null or writable.
    let out = unsafe { out_slot(out) };
    // SAFETY: the table's contract: `inst` is the header's instance.
    let inst = unsafe { instance(inst) };
    // SAFETY: the table's contract: `spec` is readable for `spec_len` bytes.
    let spec = unsafe { input(spec, spec_len) };
    guarded(out, || {
        let p = inst?.plugged()?;
        let spec = parse_spec(spec)?;
        Ok((OK, p.executor.location(&spec).into_bytes()))
    })
}

unsafe extern "C" fn start(
    inst: *const c_void,
    spec: *const u8,
    spec_len: usize,
    wake: Option<WakeFn>,
    wake_data: *const c_void,
    job_out: *mut *mut c_void,
    err: *mut ByteBuf,
) -> i32 {
    // SAFETY: the table's contract: `err` is null or writable.
    let err = unsafe { out_slot(err) };
    // SAFETY: the table's contract: `job_out` is writable.
    let job_out = unsafe { job_slot(job_out) };
    // SAFETY: the table's contract: `inst` is the header's instance.
    let inst = unsafe { instance(inst) };
    // SAFETY: the table's contract: `spec` is readable for `spec_len` bytes.
    let spec = unsafe { input(spec, spec_len) };
    hand_out(inst, wake, wake_data, job_out, err, |p| {
        let mut spec = parse_spec(spec)?;
        spec.type_name = p.executor.type_name().to_string();
        // Where the host has the job: the job may move before `watch`.
        let location = spec
            .location
            .clone()
            .unwrap_or_else(|| p.executor.location(&spec));
        let id = p.session.start(spec).map_err(|e| chain(&e))?;
        Ok((id, location))
    })
}

/// What `start` and `resume` share: `begin` puts the job in the plugin's
/// session and says where the host has it; the job's handle, watched until
/// it ends, goes to `job_out`.
fn hand_out(
    inst: Result<&Export, String>,
    wake: Option<WakeFn>,
    wake_data: *const c_void,
    job_out: Option<&mut MaybeUninit<*mut c_void>>,
    err: Out<'_>,
    begin: impl FnOnce(&Plugged) -> Result<(JobId, String), String>,
) -> i32 {
    guarded(err, || {
        let Some(job_out) = job_out else {
            return Err("a null job handle slot".into());
        };
        let p = inst?.plugged()?;
        let (id, location) = begin(p)?;
        let job = watch(p, id, location, wake, wake_data)?;
        job_out.write(job);
        Ok((OK, Vec::new()))
    })
}

/// Hands out a job of the plugin's session: a handle, and a task that wakes
/// the host on each of its changes until it ends. `location` is where the
/// host has the job.
fn watch(
    p: &Plugged,
    id: JobId,
    location: String,
    wake: Option<WakeFn>,
    wake_data: *const c_void,
) -> Result<*mut c_void, String> {
    let changed = {
        let t = p.session.inner.lock();
        t.cell(id).ok_or("the job vanished")?.watch()
    };
    let job = Arc::new(ExportedJob {
        session: p.session.clone(),
        id,
        wake: Mutex::new(wake.map(|f| (f, wake_data as usize))),
        tick: Mutex::new(0),
        ticked: Condvar::new(),
        location: Mutex::new(location),
    });
    let watched = Arc::clone(&job);
    p.session.runtime().spawn(async move {
        let mut changed = changed;
        loop {
            // Read before the wake-up: an end that comes after it
            // shows as one more change, so the last wake-up always
            // follows the end.
            let finished = watched.state().is_none_or(JobState::is_finished);
            watched.notify();
            if finished {
                return;
            }
            changed.changed().await;
        }
    });
    Ok(Arc::into_raw(job) as *mut c_void)
}

fn parse_info(bytes: &[u8]) -> Result<JobInfo, String> {
    serde_json::from_slice::<JobInfo>(bytes).map_err(|e| format!("a malformed job info: {e}"))
}

unsafe extern "C" fn resumable(
    inst: *const c_void,
    info: *const u8,
    info_len: usize,
    err: *mut ByteBuf,
) -> i32 {
    // SAFETY: the table's contract: `err` is null or writable.
    let err = unsafe { out_slot(err) };
    // SAFETY: the table's contract: `inst` is the header's instance.
    let inst = unsafe { instance(inst) };
    // SAFETY: the table's contract: `info` is readable for `info_len` bytes.
    let info = unsafe { input(info, info_len) };
    guarded(err, || {
        let p = inst?.plugged()?;
        let info = parse_info(info)?;
        Ok((i32::from(p.executor.resumable(&info)), Vec::new()))
    })
}

unsafe extern "C" fn resume(
    inst: *const c_void,
    info: *const u8,
    info_len: usize,
    wake: Option<WakeFn>,
    wake_data: *const c_void,
    job_out: *mut *mut c_void,
    err: *mut ByteBuf,
) -> i32 {
    // SAFETY: the table's contract: `err` is null or writable.
    let err = unsafe { out_slot(err) };
    // SAFETY: the table's contract: `job_out` is writable.
    let job_out = unsafe { job_slot(job_out) };
    // SAFETY: the table's contract: `inst` is the header's instance.
    let inst = unsafe { instance(inst) };
    // SAFETY: the table's contract: `info` is readable for `info_len` bytes.
    let info = unsafe { input(info, info_len) };
    hand_out(inst, wake, wake_data, job_out, err, |p| {
        let mut info = parse_info(info)?;
        info.type_name = p.executor.type_name().into();
        let location = info.location.to_string();
        let id = p.session.inner.adopt(info).map_err(|e| chain(&e))?;
        Ok((id, location))
    })
}

unsafe extern "C" fn pull(handle: *const c_void, timeout_ms: u64, out: *mut ByteBuf) -> i32 {
    // SAFETY: the table's contract: `out` is null or writable.
    let out = unsafe { out_slot(out) };
    // SAFETY: the table's contract: `handle` is a live job.
    let job = unsafe { job(handle) };
    guarded(out, || pull_records(job?, timeout_ms))
}

/// `pull`: the job's pending records as frames, waiting up to `timeout_ms`
/// for one, and its `PULL_*` status.
fn pull_records(job: &ExportedJob, timeout_ms: u64) -> Result<(i32, Vec<u8>), String> {
    let finished = |j: &ExportedJob| j.state().is_none_or(JobState::is_finished);
    // Noted first: a change after it ends the wait below at once.
    let t0 = *job.tick.lock().unwrap_or_else(|p| p.into_inner());
    let (mut state, mut moved) = job.state_and_moved();
    let mut recs = receive(job)?;
    if recs.is_empty() && timeout_ms > 0 && !finished(job) {
        let guard = job.tick.lock().unwrap_or_else(|p| p.into_inner());
        let _ = job
            .ticked
            .wait_timeout_while(guard, Duration::from_millis(timeout_ms), |t| *t == t0)
            .unwrap_or_else(|p| p.into_inner());
        let (s, m) = job.state_and_moved();
        state = s;
        moved |= m;
        recs = receive(job)?;
    }
    let mut bytes = Vec::new();
    for r in &recs {
        wire::encode(&r.record, &mut bytes)?;
    }
    // The state was read before the records: a job that was finished
    // then has handed out everything it will ever produce.
    let code = match state {
        _ if recs.len() >= PULL_LIMIT => PULL_AGAIN,
        None => PULL_FINISHED,
        Some(s) if s.is_finished() => PULL_FINISHED,
        Some(JobState::Blocked) => PULL_BLOCKED,
        Some(JobState::NotStarted) => PULL_NOT_STARTED,
        Some(_) => PULL_RUNNING,
    };
    let flags = if moved { PULL_LOCATION } else { 0 };
    Ok((code | flags, bytes))
}

fn receive(job: &ExportedJob) -> Result<Vec<crate::Received>, String> {
    let opts = ReceiveOptions {
        limit: Some(PULL_LIMIT),
        ..ReceiveOptions::default()
    };
    job.session
        .receive(&[job.id], opts)
        .map_err(|e| format!("cannot receive from the plugin's job: {}", chain(&e)))
}

unsafe extern "C" fn status(handle: *const c_void, out: *mut ByteBuf) -> i32 {
    // SAFETY: the table's contract: `out` is null or writable.
    let out = unsafe { out_slot(out) };
    // SAFETY: the table's contract: `handle` is a live job.
    let job = unsafe { job(handle) };
    guarded(out, || {
        let job = job?;
        let info = job.session.info(job.id).map_err(|e| chain(&e))?;
        let status = WireStatus {
            state: info.state,
            reason: info.reason,
            exit_code: info.exit_code,
            location: info.location.into(),
        };
        serde_json::to_vec(&status)
            .map(|b| (OK, b))
            .map_err(|e| e.to_string())
    })
}

unsafe extern "C" fn stop(handle: *const c_void) -> i32 {
    // SAFETY: the table's contract: `handle` is a live job.
    let job = unsafe { job(handle) };
    guarded(None, || {
        let job = job?;
        job.session.request_stop(job.id).map_err(|e| chain(&e))?;
        Ok((OK, Vec::new()))
    })
}

unsafe extern "C" fn suspend(handle: *const c_void, err: *mut ByteBuf) -> i32 {
    // SAFETY: the table's contract: `err` is null or writable.
    let err = unsafe { out_slot(err) };
    // SAFETY: the table's contract: `handle` is a live job.
    let job = unsafe { job(handle) };
    guarded(err, || pause(job?, true))
}

unsafe extern "C" fn resume_suspended(handle: *const c_void, err: *mut ByteBuf) -> i32 {
    // SAFETY: the table's contract: `err` is null or writable.
    let err = unsafe { out_slot(err) };
    // SAFETY: the table's contract: `handle` is a live job.
    let job = unsafe { job(handle) };
    guarded(err, || pause(job?, false))
}

/// `suspend` and `resume_suspended`: the plugin's session suspends or
/// resumes the job, on the plugin's runtime, while the host's thread waits.
fn pause(job: &ExportedJob, paused: bool) -> Result<(i32, Vec<u8>), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (session, id) = (job.session.clone(), job.id);
    job.session.runtime().spawn(async move {
        let r = if paused {
            session.suspend(&[id]).await
        } else {
            session.resume(&[id]).await
        };
        let _ = tx.send(r.map(|_| ()).map_err(|e| chain(&e)));
    });
    rx.recv()
        .map_err(|_| "the plugin's runtime dropped the request".to_string())??;
    Ok((OK, Vec::new()))
}

unsafe extern "C" fn free_job(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the vtable contract: `handle` came from `Arc::into_raw` in
    // `start` and is released exactly once, here.
    let job = unsafe { Arc::from_raw(handle as *const ExportedJob) };
    let _ = catch_unwind(AssertUnwindSafe(move || {
        *job.wake.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let session = job.session.clone();
        let id = job.id;
        drop(job);
        // A detached job the host did not stop goes on (as it would in the
        // host's process) until it ends; any other is stopped. Then forgotten.
        let goes_on = {
            let t = session.inner.lock();
            let detached = t
                .info(id)
                .is_some_and(|i| i.detached && !i.state.is_finished());
            detached && t.cell(id).is_some_and(|c| !c.stop.is_stopped())
        };
        let s = session.clone();
        session.runtime().spawn(async move {
            if goes_on {
                let _ = s.wait_finished(id).await;
            }
            let _ = s.remove(id, true).await;
        });
    }));
}

unsafe extern "C" fn free_buf(buf: ByteBuf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: every non-null buffer handed out was made by `to_buf` from a
    // `Vec<u8>` of this library, with its pointer, length and capacity.
    drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{async_trait, JobContext, JobFailure, JobSpec};

    /// Emits the words of its command, 50 ms apart.
    struct Slow;

    #[async_trait]
    impl JobExecutor for Slow {
        fn type_name(&self) -> &str {
            "SlowJob"
        }
        async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
            for w in spec.command.split_whitespace() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                ctx.output(w);
            }
            Ok(())
        }
    }

    fn make() -> Arc<dyn JobExecutor> {
        Arc::new(Slow)
    }

    static EXPORT: Export = Export::new(make);
    static HEADER: PluginHeader = PluginHeader::new(&EXPORT, "slow", "1.0.0");

    fn take(buf: ByteBuf) -> Vec<u8> {
        if buf.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the buffer was made by `to_buf` in this module.
        let v = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
        // SAFETY: as above, freed once.
        unsafe { free_buf(buf) };
        v
    }

    #[test]
    fn pull_with_a_timeout_serves_a_host_without_wake_ups() {
        // SAFETY: the header's table is the static above.
        let vt = unsafe { &*HEADER.vtable };
        let job = start_job(&HEADER, "a b c");
        let mut words = Vec::new();
        let mut pulls = 0;
        loop {
            let mut out = ByteBuf::empty();
            // SAFETY: `job` is live; `out` is a live local.
            let code = unsafe { (vt.pull)(job, 10_000, &mut out) };
            let bytes = take(out);
            assert!(code >= 0, "{}", String::from_utf8_lossy(&bytes));
            for r in wire::decode(&bytes).expect("frames") {
                words.push(String::from_utf8_lossy(&r.payload.to_display_bytes()).into_owned());
            }
            pulls += 1;
            if code == PULL_FINISHED {
                break;
            }
            assert!(pulls < 100, "pull does not wait for records");
        }
        assert_eq!(words, ["a", "b", "c"]);
        let mut out = ByteBuf::empty();
        // SAFETY: `job` is live; `out` is a live local.
        assert_eq!(unsafe { (status)(job, &mut out) }, OK);
        let st: WireStatus = serde_json::from_slice(&take(out)).expect("status");
        assert_eq!(st.state, JobState::Completed);
        // SAFETY: released once; not used afterwards.
        unsafe { (vt.free_job)(job) };
    }

    /// Emits the words of its command, 50 ms apart, pausing while suspended.
    struct Pausable;

    #[async_trait]
    impl JobExecutor for Pausable {
        fn type_name(&self) -> &str {
            "PausableJob"
        }
        async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
            for w in spec.command.split_whitespace() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                ctx.stop_token().unpaused().await;
                ctx.output(w);
            }
            Ok(())
        }
        fn can_suspend(&self) -> bool {
            true
        }
        async fn suspend(&self, _ctx: &JobContext) -> Result<(), crate::SuspendError> {
            Ok(())
        }
        async fn resume_suspended(&self, _ctx: &JobContext) -> Result<(), crate::SuspendError> {
            Ok(())
        }
    }

    fn make_pausable() -> Arc<dyn JobExecutor> {
        Arc::new(Pausable)
    }

    static PAUSABLE: Export = Export::new(make_pausable);
    static PAUSABLE_HEADER: PluginHeader = PluginHeader::new(&PAUSABLE, "pausable", "1.0.0");

    /// Starts a job of `command` through a header's table.
    fn start_job(header: &PluginHeader, command: &str) -> *mut c_void {
        // SAFETY: the header's table is a static of this module.
        let vt = unsafe { &*header.vtable };
        let spec =
            serde_json::to_vec(&WireSpec::from_spec(&JobSpec::new("x", command))).expect("spec");
        let mut job: *mut c_void = std::ptr::null_mut();
        let mut err = ByteBuf::empty();
        // SAFETY: the instance is the header's; the pointers are live locals.
        let code = unsafe {
            (vt.start)(
                header.instance,
                spec.as_ptr(),
                spec.len(),
                None,
                std::ptr::null(),
                &mut job,
                &mut err,
            )
        };
        assert_eq!(code, OK, "{}", String::from_utf8_lossy(&take(err)));
        job
    }

    fn state_of(job: *const c_void) -> JobState {
        let mut out = ByteBuf::empty();
        // SAFETY: `job` is live; `out` is a live local.
        assert_eq!(unsafe { (status)(job, &mut out) }, OK);
        let st: WireStatus = serde_json::from_slice(&take(out)).expect("status");
        st.state
    }

    #[test]
    fn suspend_and_resume_cross_to_the_plugins_session() {
        // SAFETY: the header's table is the static above.
        let vt = unsafe { &*PAUSABLE_HEADER.vtable };
        let mut out = ByteBuf::empty();
        // SAFETY: the instance is the header's; `out` is a live local.
        let code = unsafe { (vt.describe)(PAUSABLE_HEADER.instance, &mut out) };
        assert_eq!(code, OK);
        let d: WireDescribe = serde_json::from_slice(&take(out)).expect("describe");
        assert!(d.can_suspend);
        let job = start_job(&PAUSABLE_HEADER, "a b c d e f g h i j");
        let (suspend, resume) = (
            vt.suspend.expect("suspend"),
            vt.resume_suspended.expect("resume"),
        );
        let mut err = ByteBuf::empty();
        // SAFETY: `job` is live; `err` is a live local.
        let code = unsafe { suspend(job, &mut err) };
        assert_eq!(code, OK, "{}", String::from_utf8_lossy(&take(err)));
        assert_eq!(state_of(job), JobState::Suspended);
        let mut err = ByteBuf::empty();
        // SAFETY: as above.
        let code = unsafe { resume(job, &mut err) };
        assert_eq!(code, OK, "{}", String::from_utf8_lossy(&take(err)));
        assert_eq!(state_of(job), JobState::Running);
        let mut out = ByteBuf::empty();
        // SAFETY: `job` is live; `out` is a live local.
        while unsafe { (vt.pull)(job, 10_000, &mut out) } != PULL_FINISHED {
            take(std::mem::replace(&mut out, ByteBuf::empty()));
        }
        take(out);
        assert_eq!(state_of(job), JobState::Completed);
        // SAFETY: released once; not used afterwards.
        unsafe { (vt.free_job)(job) };
    }

    #[test]
    fn a_suspend_the_executor_cannot_do_is_an_error_naming_the_type() {
        // SAFETY: the header's table is the static above.
        let vt = unsafe { &*HEADER.vtable };
        let job = start_job(&HEADER, "a b c d e f g h i j");
        let mut err = ByteBuf::empty();
        // SAFETY: `job` is live; `err` is a live local.
        let code = unsafe { vt.suspend.expect("suspend")(job, &mut err) };
        assert_eq!(code, ERR);
        let msg = String::from_utf8(take(err)).expect("utf-8");
        assert!(msg.contains("SlowJob cannot be suspended"), "{msg}");
        assert_eq!(state_of(job), JobState::Running);
        // SAFETY: released once; not used afterwards.
        unsafe { (vt.free_job)(job) };
    }

    #[test]
    fn errors_come_back_as_messages_not_panics() {
        // SAFETY: the header's table is the static above.
        let vt = unsafe { &*HEADER.vtable };
        let mut job: *mut c_void = std::ptr::null_mut();
        let mut err = ByteBuf::empty();
        let bad = b"{not json";
        // SAFETY: the instance is the header's; the pointers are live locals.
        let code = unsafe {
            (vt.start)(
                HEADER.instance,
                bad.as_ptr(),
                bad.len(),
                None,
                std::ptr::null(),
                &mut job,
                &mut err,
            )
        };
        assert_eq!(code, ERR);
        assert!(job.is_null());
        let msg = String::from_utf8(take(err)).expect("utf-8");
        assert!(msg.contains("malformed job spec"), "{msg}");
        let mut out = ByteBuf::empty();
        // SAFETY: a null handle is refused before any use.
        assert_eq!(unsafe { (vt.pull)(std::ptr::null(), 0, &mut out) }, ERR);
        assert!(String::from_utf8_lossy(&take(out)).contains("null job handle"));
    }
}
