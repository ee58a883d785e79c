//! The C boundary itself: the header a plugin exports, its table of
//! functions, and the few `repr(C)` types that cross. `plugins/include/jobctl_plugin.h`
//! in the jobctl repository is the same boundary in C, kept true by a test
//! that compiles it against these definitions.
//!
//! Public only for what [`export_executor!`](crate::export_executor)
//! expands to, and for test plugins that build a wrong header on purpose:
//! Rust plugin authors use the macro, C authors the header.
//!
//! # What the ABI promises
//! The boundary is plain C: integers, pointers to bytes, `extern "C"`
//! function pointers with the platform's C calling convention. No Rust type
//! crosses, so neither side's compiler, nor the jobs-core version a Rust
//! plugin was built from, matters: **a plugin built against ABI version N
//! loads in every host that speaks version N**.
//!
//! - **Versioning.** [`ABI_VERSION`] names the layout of [`PluginHeader`]
//!   and [`PluginVTable`], the meaning of every function, status and
//!   constant, the record frame format and the JSON documents exchanged.
//!   Any change that an existing plugin or host could misread bumps it. The
//!   first 16 bytes ([`HeaderPrefix`]: magic, version, header size) are the
//!   same in every version, so a host reads them before anything else and
//!   refuses a plugin of another version (or a header or table of another
//!   size) without touching the rest. JSON documents may gain members
//!   within one version: a reader ignores members it does not know, and a
//!   member added within a version is optional.
//! - **Who frees what.** Bytes a plugin writes through an `out`/`err`
//!   pointer ([`ByteBuf`]) are the plugin's: the host reads them and gives
//!   each one back, once, through [`PluginVTable::free_buf`] (an empty one
//!   with a null pointer too). Bytes the host passes in (a spec, a job row)
//!   are the host's and borrowed for the call only. The header, its
//!   strings, the instance and the table are the plugin's static data and
//!   are never freed: the host never unloads a plugin library.
//! - **Job handles.** `start` and `resume` hand out an opaque handle; the
//!   host passes it to `pull`, `status`, `stop`, `suspend` and
//!   `resume_suspended` and releases it, once,
//!   with `free_job`, after which it is never used again.
//! - **Threads.** Every function may be called from any host thread.
//!   Calls about one job (`pull`, `status`, `stop`, `suspend`,
//!   `resume_suspended`, `free_job`) never overlap one another; calls about different jobs, and the plugin-wide
//!   `describe`, `location`, `start`, `resumable` and `resume`, may run at
//!   the same time on several threads. A plugin runs its jobs on threads of
//!   its own: no call may block for long (`pull` waits up to the timeout
//!   the host gives, and the host gives 0; `suspend` and `resume_suspended`
//!   wait until the work is paused or goes on, which should be at once).
//! - **Suspend.** A plugin whose description says `"can_suspend": true`
//!   fills the table's `suspend` and `resume_suspended`; one that cannot
//!   leaves them null (the host then refuses a suspend of its jobs, naming
//!   the type, and never calls them; so it does when they are null whatever
//!   the description says). The host owns the states: a job keeps
//!   reporting `Running` through `pull` and `status` while suspended. A
//!   stop of a suspended job is `stop` (the plugin must then end the work
//!   even though it was paused), followed by `resume_suspended`.
//! - **The wake-up function.** `start` and `resume` take a [`WakeFn`] and
//!   its `data`. The plugin calls `wake(data)` from any of its threads
//!   whenever the job has new records or a new state (at least once after
//!   the job finished), until `free_job` returns: after that it never calls
//!   it again. Wake-ups may be merged; the host then pulls. The wake-up
//!   returns at once and never calls into the plugin, so the plugin may
//!   call it while holding its own locks, and from inside a table call.
//! - **Re-entrancy.** The plugin never calls the host except through the
//!   wake-up; the host never calls the plugin from inside the wake-up.
//! - **Failures.** A function that fails returns [`ERR`] and writes a UTF-8
//!   message to its `out`/`err` buffer; it never unwinds (a Rust plugin's
//!   entry points catch panics) and never ends the process.
//! - **Record frames.** `pull` hands out records as consecutive frames:
//!   `stream: u8, kind: u8, len: u32 little endian, data: [u8; len]`
//!   ([`FRAME_HEAD_LEN`] bytes of head). `stream` is the stream's number
//!   (output 0, error 1, warning 2, verbose 3, debug 4, information 5,
//!   progress 6: [`Stream::ALL`](crate::Stream::ALL)'s order), `kind` the
//!   payload's (bytes 0, text 1, value 2, progress 3, error 4:
//!   [`PayloadKind::code`](crate::PayloadKind::code)): `bytes` and `text`
//!   (UTF-8) travel raw; `value` is any JSON value; `progress` is JSON
//!   `{"percent": number, "activity": string, "status": string}` (each
//!   member optional); `error` is JSON `{"message": string, "category":
//!   string, "details": any}` (`message` required).
//! - **JSON documents.** The spec given to `location` and `start`:
//!   `{"type_name", "name", "command", "params", "location", "detached",
//!   "instance_id"}` (the command a string, as the user wrote it; `params`
//!   any JSON, from `jobctl`: `{"work", "cwd", "env", "hosts"}`). The
//!   description `describe` writes, the status `status` writes and the job
//!   row `resumable`/`resume` take are documented on those functions.
//!   States are spelled as in `jobctl`: `NotStarted`, `Running`, `Blocked`,
//!   `Stopped`, `Completed`, `Failed`.

use std::ffi::c_void;

/// The first eight bytes of every plugin header.
pub const MAGIC: [u8; 8] = *b"JOBSPLG\0";

/// The version of this boundary: the header's and table's layout, the
/// meaning of each function and what they exchange. Any change bumps it.
///
/// Version 4 made the boundary compiler-independent: the header no longer
/// carries the jobs-core and `rustc` versions, and gained the table's size.
/// Version 5 added suspend and resume: the table's `suspend` and
/// `resume_suspended`, and `can_suspend` in the description.
pub const ABI_VERSION: u32 = 5;

/// The symbol a plugin exports: `extern "C" fn() -> *const PluginHeader`.
pub const ENTRY_SYMBOL: &str = "jobs_plugin_header";

/// The jobs-core version this library was built from. Informative only:
/// the loader checks the ABI version, not this.
pub const CORE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A call succeeded.
pub const OK: i32 = 0;
/// A call failed; its output buffer holds the message (UTF-8).
pub const ERR: i32 = -1;

/// The length of a record frame's head (stream, kind, length).
pub const FRAME_HEAD_LEN: usize = 6;

/// `pull`: the job runs; call again when woken.
pub const PULL_RUNNING: i32 = 0;
/// `pull`: the job is Blocked; call again when woken.
pub const PULL_BLOCKED: i32 = 1;
/// `pull`: the job is finished and this was its last batch.
pub const PULL_FINISHED: i32 = 2;
/// `pull`: the batch was cut short; call again at once.
pub const PULL_AGAIN: i32 = 3;
/// `pull`: the job waits to start (its executor
/// [reports its start](crate::JobExecutor::reports_start)); call again when woken.
pub const PULL_NOT_STARTED: i32 = 4;
/// `pull`: a flag or-ed into the status: the job's location changed since
/// the last `pull`; `status` tells the new one.
pub const PULL_LOCATION: i32 = 0x100;
/// `pull`: the bits of the status that hold the `PULL_*` value, without flags.
pub const PULL_STATUS_MASK: i32 = 0xff;

/// A borrowed UTF-8 string with static lifetime inside the plugin.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef {
    /// The first byte.
    pub ptr: *const u8,
    /// The length in bytes.
    pub len: usize,
}

impl StrRef {
    /// A reference to a static string.
    pub const fn from_static(s: &'static str) -> Self {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

/// Bytes allocated by the plugin and handed to the host, which gives them
/// back through [`PluginVTable::free_buf`]: each side frees its own memory.
#[repr(C)]
#[derive(Debug)]
pub struct ByteBuf {
    /// The first byte (null when empty).
    pub ptr: *mut u8,
    /// The length.
    pub len: usize,
    /// The plugin's own bookkeeping (a Rust plugin's `Vec` capacity): the
    /// host only gives it back.
    pub cap: usize,
}

impl ByteBuf {
    /// An empty buffer that owns nothing.
    pub const fn empty() -> Self {
        ByteBuf {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }
}

/// The fixed start of every header, whatever its ABI version: the loader
/// reads this much first and nothing more unless it matches.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HeaderPrefix {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`] of the plugin's build.
    pub abi_version: u32,
    /// `size_of::<PluginHeader>()` of the plugin's build.
    pub header_size: u32,
}

/// What the entry point returns: who the plugin is, and its functions.
///
/// Its layout (64-bit): `magic` at 0, `abi_version` 8, `header_size` 12,
/// `vtable_size` 16, `reserved` 20, `plugin_name` 24, `plugin_version` 40,
/// `instance` 56, `vtable` 64; 72 bytes in all.
#[repr(C)]
#[derive(Debug)]
pub struct PluginHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`] of the plugin's build.
    pub abi_version: u32,
    /// `size_of::<PluginHeader>()` of the plugin's build.
    pub header_size: u32,
    /// `size_of::<PluginVTable>()` of the plugin's build.
    pub vtable_size: u32,
    /// Zero; the loader ignores it.
    pub reserved: u32,
    /// The plugin's name (UTF-8, static).
    pub plugin_name: StrRef,
    /// The plugin's version (UTF-8, static).
    pub plugin_version: StrRef,
    /// The plugin's instance, passed back to the plugin-wide functions; the
    /// host never reads through it (it may be null).
    pub instance: *const c_void,
    /// The functions.
    pub vtable: *const PluginVTable,
}

// SAFETY: a header is immutable static data: pointers to static strings, a
// static instance (itself `Sync`) and a static function table.
unsafe impl Sync for PluginHeader {}

/// Called by the plugin, from any of its threads, when a job has new
/// records or a new state. `data` is the host's pointer given to `start`
/// (or `resume`). It returns at once and never calls into the plugin; it is
/// not called again once `free_job` returned.
pub type WakeFn = extern "C" fn(data: *const c_void);

/// The functions of a plugin. Each returns [`OK`]/[`ERR`] (or a `PULL_*`
/// status) and never unwinds: panics are caught and become [`ERR`].
/// Buffers written through an `out` pointer are the plugin's and go back
/// through `free_buf`; input bytes are the host's and are only borrowed
/// for the call.
#[repr(C)]
#[derive(Debug)]
pub struct PluginVTable {
    /// Writes JSON `{"type_name": string, "default_throttle": number|null,
    /// "reports_start": bool, "can_suspend": bool}` to `out`: the job type,
    /// the throttle the host applies unless told otherwise, whether a new
    /// job stays NotStarted until `pull` says otherwise (else it is Running
    /// at once), and whether its jobs can be suspended (optional, false
    /// when absent).
    /// The host calls it once, at load time, after the header check (a
    /// Rust plugin builds its executor and runtime then).
    pub describe: unsafe extern "C" fn(instance: *const c_void, out: *mut ByteBuf) -> i32,
    /// Writes the location (UTF-8) of a job of the spec (JSON) to `out`.
    pub location: unsafe extern "C" fn(
        instance: *const c_void,
        spec: *const u8,
        spec_len: usize,
        out: *mut ByteBuf,
    ) -> i32,
    /// Starts a job of the spec (JSON, with the host job's `instance_id`,
    /// which the plugin's job takes) and writes its handle to `job`;
    /// `wake(wake_data)` is called on every change until `free_job`
    /// returns. On [`ERR`] the message is in `err` and no handle exists.
    pub start: unsafe extern "C" fn(
        instance: *const c_void,
        spec: *const u8,
        spec_len: usize,
        wake: Option<WakeFn>,
        wake_data: *const c_void,
        job: *mut *mut c_void,
        err: *mut ByteBuf,
    ) -> i32,
    /// Whether the executor can take over the job of a previous session:
    /// returns 1 (yes), 0 (no) or [`ERR`]. The job row is the JSON of a
    /// `JobInfo`: `{"id", "instance_id", "name", "type", "state", "reason",
    /// "location", "command", "begin", "end", "exit_code", "detached", ...}`.
    pub resumable: unsafe extern "C" fn(
        instance: *const c_void,
        info: *const u8,
        info_len: usize,
        err: *mut ByteBuf,
    ) -> i32,
    /// Takes over the job (JSON of a `JobInfo`, whose instance id the
    /// plugin's job keeps) of a previous session, as `start` starts one:
    /// the same handle, wake-ups and errors.
    pub resume: unsafe extern "C" fn(
        instance: *const c_void,
        info: *const u8,
        info_len: usize,
        wake: Option<WakeFn>,
        wake_data: *const c_void,
        job: *mut *mut c_void,
        err: *mut ByteBuf,
    ) -> i32,
    /// Moves the job's pending records (frames) to `out`, waiting up to
    /// `timeout_ms` for one if there are none; returns a `PULL_*` status,
    /// read before the records were taken: after [`PULL_FINISHED`] the job
    /// has nothing more to hand out.
    pub pull: unsafe extern "C" fn(job: *const c_void, timeout_ms: u64, out: *mut ByteBuf) -> i32,
    /// Writes JSON `{"state": string, "reason": string|null, "exit_code":
    /// number|null, "location": string}` to `out`. Once `pull` said
    /// [`PULL_FINISHED`], the state is `Completed`, `Failed` or `Stopped`
    /// (and a `Failed` job's reason says why).
    pub status: unsafe extern "C" fn(job: *const c_void, out: *mut ByteBuf) -> i32,
    /// Requests a stop of the job (idempotent); returns at once.
    pub stop: unsafe extern "C" fn(job: *const c_void) -> i32,
    /// Releases the handle: stops the job if it still runs (a detached job
    /// the host did not stop goes on until it ends); no `wake` call happens
    /// once this returns.
    pub free_job: unsafe extern "C" fn(job: *mut c_void),
    /// Frees a buffer the plugin handed out.
    pub free_buf: unsafe extern "C" fn(buf: ByteBuf),
    /// Pauses the job's work; returns once it is paused, or [`ERR`] with a
    /// message in `err`. Null when the executor cannot suspend.
    pub suspend: Option<unsafe extern "C" fn(job: *const c_void, err: *mut ByteBuf) -> i32>,
    /// Lets a suspended job's work go on, as `suspend` pauses it. Null
    /// when the executor cannot suspend.
    pub resume_suspended:
        Option<unsafe extern "C" fn(job: *const c_void, err: *mut ByteBuf) -> i32>,
}
