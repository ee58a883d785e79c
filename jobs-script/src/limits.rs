//! The limits a user can put on a script, and the failures that name them.

use std::fmt;

use rhai::Engine;
use serde::{Deserialize, Serialize};

/// Bounds on what one script may do. `None` leaves the engine's default:
/// unlimited operations, strings, arrays and maps; a call depth of 64 in
/// release builds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// At most this many operations (statements, expressions, calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_operations: Option<u64>,
    /// At most this many bytes in one string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_string_size: Option<usize>,
    /// At most this many elements in one array (or bytes in one blob).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_array_size: Option<usize>,
    /// At most this many properties in one map. The engine checks it when
    /// a map is built or changed by a map function (`set`, `mixin`, `+=`),
    /// not when `m[key] = x` adds a key: bound such scripts with
    /// `max_operations` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_map_size: Option<usize>,
    /// At most this many nested function calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_call_depth: Option<usize>,
}

impl Limits {
    /// No limits beyond the engine's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the maximum number of operations.
    pub fn max_operations(mut self, n: u64) -> Self {
        self.max_operations = Some(n);
        self
    }

    /// Sets the maximum string size in bytes.
    pub fn max_string_size(mut self, n: usize) -> Self {
        self.max_string_size = Some(n);
        self
    }

    /// Sets the maximum array size.
    pub fn max_array_size(mut self, n: usize) -> Self {
        self.max_array_size = Some(n);
        self
    }

    /// Sets the maximum map size.
    pub fn max_map_size(mut self, n: usize) -> Self {
        self.max_map_size = Some(n);
        self
    }

    /// Sets the maximum call depth.
    pub fn max_call_depth(mut self, n: usize) -> Self {
        self.max_call_depth = Some(n);
        self
    }

    pub(crate) fn apply(&self, engine: &mut Engine) {
        if let Some(n) = self.max_operations {
            engine.set_max_operations(n);
        }
        if let Some(n) = self.max_string_size {
            engine.set_max_string_size(n);
        }
        if let Some(n) = self.max_array_size {
            engine.set_max_array_size(n);
        }
        if let Some(n) = self.max_map_size {
            engine.set_max_map_size(n);
        }
        if let Some(n) = self.max_call_depth {
            engine.set_max_call_levels(n);
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
    /// [`Limits::max_call_depth`].
    CallDepth,
}

impl Limit {
    /// The limit's name as a user sets it (`max_operations`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Limit::Operations => "max_operations",
            Limit::StringSize => "max_string_size",
            Limit::ArraySize => "max_array_size",
            Limit::MapSize => "max_map_size",
            Limit::CallDepth => "max_call_depth",
        }
    }

    /// The limit's value in `limits`, if set there.
    pub(crate) fn value_in(self, limits: &Limits) -> Option<u64> {
        match self {
            Limit::Operations => limits.max_operations,
            Limit::StringSize => limits.max_string_size.map(|n| n as u64),
            Limit::ArraySize => limits.max_array_size.map(|n| n as u64),
            Limit::MapSize => limits.max_map_size.map(|n| n as u64),
            Limit::CallDepth => limits.max_call_depth.map(|n| n as u64),
        }
    }

    /// What a user reads: `script exceeded the operation limit`.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Limit::Operations => "operation limit",
            Limit::StringSize => "string size limit",
            Limit::ArraySize => "array size limit",
            Limit::MapSize => "map size limit",
            Limit::CallDepth => "call depth limit",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
