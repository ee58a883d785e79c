//! What the daemon reports is on disk first.
//!
//! The daemon lets its store buffer the finished rows of batch items (see
//! [`SqliteStore::defer_finished_items`]): a batch of short items then
//! costs no transaction per item. In exchange, everything that tells the
//! outside world a job finished (a reply or page to a client, a hook)
//! first calls [`before_report`], which writes those buffered rows if any
//! are not on disk yet, and costs a few atomic operations when none is. So a
//! finished item that anyone heard of survives a SIGKILL of the daemon.

use std::sync::{Arc, OnceLock, Weak};

use jobs_store_sqlite::SqliteStore;
use tracing::warn;

/// The daemon's store, once it buffers finished items (held weakly: the
/// store still closes, and writes what it holds, when the daemon drops it).
static STORE: OnceLock<Weak<SqliteStore>> = OnceLock::new();

/// Has `store` buffer the finished rows of batch items, written before
/// any report.
pub(crate) fn defer_finished_items(store: &Arc<SqliteStore>) {
    if STORE.set(Arc::downgrade(store)).is_ok() {
        store.defer_finished_items();
    }
}

/// Writes the buffered finished rows, if any, before a report. A failed
/// write is logged and the report goes on, as it did when a finished row
/// failed to write in its own transaction.
pub(crate) fn before_report() {
    if let Some(store) = STORE.get().and_then(Weak::upgrade) {
        if let Err(e) = store.sync_finished_items() {
            warn!("cannot write the finished rows of batch items: {e}");
        }
    }
}
