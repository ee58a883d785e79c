//! Finished rows of batch items that ride with the next batch.
//!
//! A batch of many short items finishes a child every few hundred
//! microseconds; a transaction per finished row was most of the session's
//! own cost per item. With [`SqliteStore::defer_finished_items`] a
//! finished item's row (a child that names its item, waits for no job) is
//! buffered like a live row and written by the writer thread with the next
//! batch (within the flush interval), together with the records appended
//! before it, in one transaction with everything else buffered then.
//!
//! What that gives up is made good by its caller: before it tells anyone
//! that such an item finished (a reply to a client), it calls
//! [`SqliteStore::sync_finished_items`], which writes the buffered
//! finished rows if any are not on disk yet. So a finished item reported to
//! a client survives a SIGKILL of its host, as any finished row does; one
//! reported to nobody yet may be lost with the flush window, and a restart
//! then reports it as ended with its session. The parent's own finished
//! row is written at once, and with it every buffered row of its items.
//!
//! [`SqliteStore::defer_finished_items`]: crate::SqliteStore::defer_finished_items
//! [`SqliteStore::sync_finished_items`]: crate::SqliteStore::sync_finished_items

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use jobs_core::JobInfo;

/// Whether finished item rows are buffered, and how far they are on disk.
#[derive(Default)]
pub(crate) struct Items {
    /// Set by [`SqliteStore::defer_finished_items`](crate::SqliteStore::defer_finished_items).
    on: AtomicBool,
    /// How many finished item rows were buffered (changed under the
    /// pending lock).
    buffered: AtomicU64,
    /// Of those, how many a committed write took (changed under the
    /// database lock).
    synced: AtomicU64,
}

impl Items {
    pub(crate) fn enable(&self) {
        self.on.store(true, Ordering::Release);
    }

    /// Whether `info`'s row may wait for the next batch: a finished batch
    /// item's, with deferral on. A job that waited for others is not one
    /// (its finished row also drops its waiting spec, at once).
    pub(crate) fn defers(&self, info: &JobInfo) -> bool {
        self.on.load(Ordering::Acquire)
            && info.state.is_finished()
            && info.parent.is_some()
            && info.item.is_some()
            && !info.has_dependencies()
    }

    /// Counts a finished row just buffered. Call with the pending lock held.
    pub(crate) fn buffered(&self) {
        self.buffered.fetch_add(1, Ordering::SeqCst);
    }

    /// The count of buffered rows a write is about to take. Call with the
    /// pending lock held, as the write takes what is buffered.
    pub(crate) fn taking(&self) -> u64 {
        self.buffered.load(Ordering::SeqCst)
    }

    /// A write that took the rows counted by `taken` committed. Call with
    /// the database lock held.
    pub(crate) fn committed(&self, taken: u64) {
        self.synced.fetch_max(taken, Ordering::SeqCst);
    }

    /// Whether a finished row buffered so far may not be on disk yet.
    pub(crate) fn unsynced(&self) -> bool {
        self.synced.load(Ordering::SeqCst) < self.buffered.load(Ordering::SeqCst)
    }
}
