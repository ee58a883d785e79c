//! The limits a user can put on a script, and the failures that name them.

use std::fmt;

use rhai::Engine;
use serde::{Deserialize, Serialize};

/// The default [`Limits::max_string_size`]: 16 MiB.
pub const DEFAULT_MAX_STRING_SIZE: usize = 16 << 20;
/// The default [`Limits::max_array_size`]: 1,048,576 elements.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1 << 20;
/// The default [`Limits::max_map_size`]: 1,048,576 properties.
pub const DEFAULT_MAX_MAP_SIZE: usize = 1 << 20;

/// The least default [`Limits::max_memory`]: 1 GiB (the default is a
/// quarter of the machine's memory when that is more).
pub const MIN_DEFAULT_MAX_MEMORY: u64 = 1 << 30;

/// The default [`Limits::max_memory`]: a quarter of the machine's memory,
/// at least [`MIN_DEFAULT_MAX_MEMORY`].
pub fn default_max_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    (total / 4).max(MIN_DEFAULT_MAX_MEMORY)
}

/// The resident memory of this process in bytes, if the system says.
pub(crate) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Linux's page size on every architecture this runs on that has 4 KiB
    // pages; a larger page only makes the check stricter by its ratio.
    Some(pages * 4096)
}

/// Bounds on what one script may do. A limit left `None` takes the
/// session's (see `ScriptExecutor::limits`), else the default; `0` lifts
/// a size or operation limit.
///
/// The defaults keep a runaway script from exhausting the memory of the
/// process it runs in (a thread job runs inside the session daemon): a
/// string (or the strings inside one array or map) of at most
/// [`DEFAULT_MAX_STRING_SIZE`] bytes, an array or blob of at most
/// [`DEFAULT_MAX_ARRAY_SIZE`] elements, a map of at most
/// [`DEFAULT_MAX_MAP_SIZE`] properties, and the engine's call and
/// expression depths (64 and 64 in release builds, fewer in debug builds),
/// which keep recursion within a thread's stack. Operations are unlimited by
/// default: a script that only computes costs its own thread's time and
/// ends with a stop request, and a long-running script (a watcher that
/// sleeps and polls) is legitimate. The size limits bound each value, not
/// the sum of all values a script holds: [`Limits::max_memory`] bounds
/// that, as the resident memory of the process the script runs in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// At most this many operations (statements, expressions, calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_operations: Option<u64>,
    /// At most this many bytes in one string (or in all the strings of one
    /// array or map).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_string_size: Option<usize>,
    /// At most this many elements in one array (nested arrays included), or
    /// bytes in one blob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_array_size: Option<usize>,
    /// At most this many properties in one map. The engine checks it when
    /// a map is built or changed by a map function (`set`, `mixin`, `+=`),
    /// not when `m[key] = x` adds a key: bound such scripts with
    /// `max_operations` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_map_size: Option<usize>,
    /// The script fails once the resident memory of the process it runs in
    /// passes this many bytes (checked every 65,536 operations; default
    /// [`default_max_memory`]). The size limits bound each value, not how
    /// many a script makes: this bounds them all, `m[key] = x` growing a
    /// map included. A thread job shares the daemon's memory with the
    /// session, so the check sees the whole daemon: it fails the script
    /// that is running when the session's memory is over the bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<u64>,
    /// At most this many nested function calls. Raising it above the
    /// default may overflow the stack of the thread that runs the script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_call_depth: Option<usize>,
    /// At most this deep a nesting of expressions (half of it inside
    /// functions); `0` lifts it. Raising it may overflow the stack too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_expr_depth: Option<usize>,
}

impl Limits {
    /// No limits of its own: the session's, else the defaults, apply.
    pub fn new() -> Self {
        Self::default()
    }

    /// The defaults, as the engine sees them when no limit is set (the
    /// depths are left to the engine).
    pub fn defaults() -> Self {
        Limits {
            max_operations: None,
            max_string_size: Some(DEFAULT_MAX_STRING_SIZE),
            max_array_size: Some(DEFAULT_MAX_ARRAY_SIZE),
            max_map_size: Some(DEFAULT_MAX_MAP_SIZE),
            max_memory: Some(default_max_memory()),
            max_call_depth: None,
            max_expr_depth: None,
        }
    }

    /// These limits, with each one not set here taken from `fallback`.
    pub fn or(&self, fallback: &Limits) -> Self {
        Limits {
            max_operations: self.max_operations.or(fallback.max_operations),
            max_string_size: self.max_string_size.or(fallback.max_string_size),
            max_array_size: self.max_array_size.or(fallback.max_array_size),
            max_map_size: self.max_map_size.or(fallback.max_map_size),
            max_memory: self.max_memory.or(fallback.max_memory),
            max_call_depth: self.max_call_depth.or(fallback.max_call_depth),
            max_expr_depth: self.max_expr_depth.or(fallback.max_expr_depth),
        }
    }

    /// Sets the maximum number of operations (`0`: unlimited).
    pub fn max_operations(mut self, n: u64) -> Self {
        self.max_operations = Some(n);
        self
    }

    /// Sets the maximum string size in bytes (`0`: unlimited).
    pub fn max_string_size(mut self, n: usize) -> Self {
        self.max_string_size = Some(n);
        self
    }

    /// Sets the maximum array size (`0`: unlimited).
    pub fn max_array_size(mut self, n: usize) -> Self {
        self.max_array_size = Some(n);
        self
    }

    /// Sets the maximum map size (`0`: unlimited).
    pub fn max_map_size(mut self, n: usize) -> Self {
        self.max_map_size = Some(n);
        self
    }

    /// Sets the most resident memory, in bytes, of the process the script
    /// runs in (`0`: unlimited).
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.max_memory = Some(bytes);
        self
    }

    /// Sets the maximum call depth.
    pub fn max_call_depth(mut self, n: usize) -> Self {
        self.max_call_depth = Some(n);
        self
    }

    /// Sets the maximum expression depth (`0`: unlimited).
    pub fn max_expr_depth(mut self, n: usize) -> Self {
        self.max_expr_depth = Some(n);
        self
    }

    /// Applies these limits, completed by [`Limits::defaults`], to `engine`.
    pub(crate) fn apply(&self, engine: &mut Engine) {
        let l = self.or(&Limits::defaults());
        if let Some(n) = l.max_operations {
            engine.set_max_operations(n);
        }
        if let Some(n) = l.max_string_size {
            engine.set_max_string_size(n);
        }
        if let Some(n) = l.max_array_size {
            engine.set_max_array_size(n);
        }
        if let Some(n) = l.max_map_size {
            engine.set_max_map_size(n);
        }
        if let Some(n) = l.max_call_depth {
            engine.set_max_call_levels(n);
        }
        if let Some(n) = l.max_expr_depth {
            engine.set_max_expr_depths(n, n / 2);
        }
    }
}

/// Which limit a script ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_operations`].
    Operations,
    /// [`Limits::max_string_size`].
    StringSize,
    /// [`Limits::max_array_size`].
    ArraySize,
    /// [`Limits::max_map_size`].
    MapSize,
    /// [`Limits::max_memory`].
    Memory,
    /// [`Limits::max_call_depth`].
    CallDepth,
    /// [`Limits::max_expr_depth`].
    ExprDepth,
}

impl Limit {
    /// The limit's name as a user sets it (`max_operations`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Limit::Operations => "max_operations",
            Limit::StringSize => "max_string_size",
            Limit::ArraySize => "max_array_size",
            Limit::MapSize => "max_map_size",
            Limit::Memory => "max_memory",
            Limit::CallDepth => "max_call_depth",
            Limit::ExprDepth => "max_expr_depth",
        }
    }

    /// The limit's value in `engine` (`0`: unlimited).
    pub(crate) fn value_in(self, engine: &Engine) -> u64 {
        match self {
            Limit::Operations => engine.max_operations(),
            Limit::StringSize => engine.max_string_size() as u64,
            Limit::ArraySize => engine.max_array_size() as u64,
            Limit::MapSize => engine.max_map_size() as u64,
            // Not the engine's: the failure carries it.
            Limit::Memory => 0,
            Limit::CallDepth => engine.max_call_levels() as u64,
            Limit::ExprDepth => engine.max_expr_depth() as u64,
        }
    }

    /// What a user reads: `script exceeded the operation limit`.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Limit::Operations => "operation limit",
            Limit::StringSize => "string size limit",
            Limit::ArraySize => "array size limit",
            Limit::MapSize => "map size limit",
            Limit::Memory => "memory limit",
            Limit::CallDepth => "call depth limit",
            Limit::ExprDepth => "expression depth limit",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
