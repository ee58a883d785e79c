//! Executors built as separate libraries (cdylibs) and loaded at run time.
//!
//! # Why the boundary is C
//! Trait objects, `async-trait` futures and tokio handles have no stable
//! layout between two separately compiled libraries, and every cdylib has
//! its own copy of tokio with its own thread-locals. So nothing of Rust
//! crosses: the plugin exports one `extern "C"` function returning a
//! `repr(C)` header (magic, ABI version, header and table sizes, plugin
//! name and version) with a table of
//! `extern "C"` functions over opaque handles: start a
//! job from a JSON spec (carrying the host job's instance id), or resume
//! one of a previous session from its JSON row, pull its records
//! (length-prefixed frames, text and bytes raw) with its state (NotStarted
//! until an executor that reports its start says so) and location changes,
//! read its state, location, reason and exit code, stop it, release it.
//! Only bytes and UTF-8 cross; each side frees its own memory; every
//! function of the plugin catches panics.
//!
//! # The two sides
//! - **Plugin**: [`export_executor!`](crate::export_executor) turns an
//!   ordinary [`JobExecutor`](crate::JobExecutor) into the export. On the
//!   host's first call the plugin builds its executor, a tokio runtime of
//!   its own (two worker threads) and a [`Session`](crate::Session) of its
//!   own; each job runs there, and its records and states are handed out
//!   through the table. The plugin wakes the host through a callback when a
//!   job changes, so nothing polls.
//! - **Host** (cargo feature `plugin-host`): `load` opens the library
//!   (never unloading it), checks the header before calling anything else
//!   and refuses any mismatch with an error naming both versions, then
//!   wraps the table in an executor that a session cannot tell from a
//!   built-in one. `scan` loads whole folders and reports broken plugins
//!   instead of failing; which folders is the host program's policy.
//! - **Tests** (cargo feature `test-kit`): `testing` builds a plugin crate
//!   with cargo, so that its tests load the real library.
//!
//! # The contract
//! - The boundary is C and versioned by itself ([`ABI_VERSION`]): a plugin
//!   built against ABI version N, by any compiler and in any language (see
//!   `plugins/include/jobctl_plugin.h`), loads in every host that speaks
//!   version N. The loader refuses another magic, ABI version, header size
//!   or table size. What the ABI promises (who frees what, threads,
//!   re-entrancy, the wake-up, the record frames) is written in
//!   `abi`'s documentation and in `plugins/README.md`.
//! - A Rust plugin's panics must unwind (`panic = "abort"` turns a plugin
//!   panic into the host's death); its entry points catch them.
//! - Loading runs the library's initializers and the entry point, which
//!   returns a static header and does nothing else. The executor is built,
//!   and the plugin's runtime started, at the first call after the checks.
//! - A loaded plugin runs with the host's rights. The loader refuses a
//!   symbolic link, and a file that another user owns or could have
//!   written or replaced: the file and every folder above it must belong
//!   to the host's user or root and be writable by no one else (a sticky
//!   folder such as `/tmp` may be above the plugin's folder); see [`load`].
//! - What does not cross: in-process payloads ([`JobSpec::payload`]) fail
//!   the job; live values arrive as their JSON rendering; child jobs a
//!   plugin opens run inside the plugin and their records arrive as the
//!   parent's.
//!
//! The guide from `cargo new --lib` to a loaded plugin is `plugins/README.md`
//! in the jobctl repository.
//!
//! [`JobSpec::payload`]: crate::JobSpec::payload
#![allow(unsafe_code)]

#[doc(hidden)]
pub mod abi;
#[cfg(feature = "plugin-host")]
mod adapter;
mod export;
#[cfg(feature = "plugin-host")]
mod loader;
mod macros;
#[cfg(feature = "test-kit")]
pub mod testing;
mod wire;

pub use abi::{ABI_VERSION, CORE_VERSION};
/// What [`export_executor!`](crate::export_executor) expands to; not part
/// of the documented API.
#[doc(hidden)]
pub use export::Export;
#[cfg(feature = "plugin-host")]
pub use loader::{
    check_folder, check_trusted, load, scan, Insecurity, LoadedPlugin, PluginError, Scan,
};
