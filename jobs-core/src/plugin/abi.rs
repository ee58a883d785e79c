//! The C boundary itself: the header a plugin exports, its table of
//! functions, and the few `repr(C)` types that cross.
//!
//! Everything here is plain data: integers, pointers to bytes, and
//! `extern "C"` function pointers. Rust types (trait objects, futures,
//! `String`s, tokio handles) never cross; strings cross as UTF-8 bytes and
//! structured values as JSON or length-prefixed record frames.
//!
//! Public only for what [`export_executor!`](crate::export_executor)
//! expands to, and for test plugins that build a wrong header on purpose:
//! not part of the documented API.

use std::ffi::c_void;

/// The first eight bytes of every plugin header.
pub const MAGIC: [u8; 8] = *b"JOBSPLG\0";

/// The version of this boundary: the header's layout, the functions of
/// [`PluginVTable`] and what they exchange. Any change bumps it.
pub const ABI_VERSION: u32 = 3;

/// The symbol a plugin exports: `extern "C" fn() -> *const PluginHeader`.
pub const ENTRY_SYMBOL: &str = "jobs_plugin_header";

/// The jobs-core version this library was built from.
pub const CORE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The compiler this library was built with (`rustc -V`).
pub const RUSTC_VERSION: &str = env!("JOBS_CORE_RUSTC_VERSION");

/// A call succeeded.
pub const OK: i32 = 0;
/// A call failed; its output buffer holds the message (UTF-8).
pub const ERR: i32 = -1;

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
    /// The capacity of the allocation.
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

/// What the entry point returns: who built the plugin and its functions.
#[repr(C)]
#[derive(Debug)]
pub struct PluginHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`] of the plugin's build.
    pub abi_version: u32,
    /// `size_of::<PluginHeader>()` of the plugin's build.
    pub header_size: u32,
    /// The jobs-core version the plugin was built with.
    pub core_version: StrRef,
    /// The compiler the plugin was built with (`rustc -V`).
    pub rustc_version: StrRef,
    /// The plugin's crate name.
    pub plugin_name: StrRef,
    /// The plugin's crate version.
    pub plugin_version: StrRef,
    /// The plugin's instance, passed back to the plugin-wide functions.
    pub instance: *const c_void,
    /// The functions.
    pub vtable: *const PluginVTable,
}

// SAFETY: a header is immutable static data: pointers to static strings, a
// static instance (itself `Sync`) and a static function table.
unsafe impl Sync for PluginHeader {}

/// Called by the plugin, from any of its threads, when a job has new
/// records or a new state. `data` is the host's pointer given to `start`.
pub type WakeFn = extern "C" fn(data: *const c_void);

/// The functions of a plugin. Each returns [`OK`]/[`ERR`] (or a `PULL_*`
/// status) and never unwinds: panics are caught and become [`ERR`].
/// Buffers written through an `out` pointer are the plugin's and go back
/// through `free_buf`; input bytes are the host's and are only borrowed
/// for the call.
#[repr(C)]
#[derive(Debug)]
pub struct PluginVTable {
    /// Writes JSON `{"type_name": .., "default_throttle": .., "reports_start": ..}`
    /// to `out`.
    /// The first call builds the executor and the plugin's runtime.
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
    /// Whether the executor can take over the job (JSON of a `JobInfo`) of
    /// a previous session: returns 1 (yes), 0 (no) or [`ERR`].
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
    /// `timeout_ms` for one if there are none; returns a `PULL_*` status.
    pub pull: unsafe extern "C" fn(job: *const c_void, timeout_ms: u64, out: *mut ByteBuf) -> i32,
    /// Writes JSON `{"state": .., "reason": .., "exit_code": .., "location": ..}`
    /// to `out`.
    pub status: unsafe extern "C" fn(job: *const c_void, out: *mut ByteBuf) -> i32,
    /// Requests a stop of the job (idempotent); returns at once.
    pub stop: unsafe extern "C" fn(job: *const c_void) -> i32,
    /// Releases the handle: stops the job if it still runs (a detached job
    /// the host did not stop goes on until it ends); no `wake` call happens
    /// once this returns.
    pub free_job: unsafe extern "C" fn(job: *mut c_void),
    /// Frees a buffer the plugin handed out.
    pub free_buf: unsafe extern "C" fn(buf: ByteBuf),
}
