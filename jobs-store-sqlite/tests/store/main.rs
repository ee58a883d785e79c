//! Tests of the SQLite store through its public API: payload round trips,
//! paging, discard, the write buffer, data files, reopening, the schema
//! version, the store under a session, and a real SIGKILL.

// Helpers shared by the test modules are used by some of them only.
#![allow(unreachable_pub)]

use jobs_store_sqlite::{SqliteStore, StoreOptions, SCHEMA_VERSION};

/// Where the store keeps a database's data files.
mod files {
    pub(super) use jobs_store_sqlite::data_dir as dir_of;
}

mod crash_tests;
mod deps_tests;
mod drain_tests;
mod events_tests;
mod file_tests;
mod items_tests;
mod session_tests;
mod soon_tests;
mod tests;
