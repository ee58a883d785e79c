//! What every connection of the daemon shares: the session and the
//! daemon's own state.

use std::sync::atomic::{AtomicBool, Ordering};

use jobs_core::Session;
use jobs_protocol::TypeEntry;
use tokio::sync::Notify;
use tracing::info;

/// What every connection task shares.
pub(crate) struct Daemon {
    /// The job table.
    pub(crate) session: Session,
    /// The session's store, for what the daemon keeps beside the table
    /// (the requests `restart` replays).
    pub(crate) store: std::sync::Arc<jobs_store_sqlite::SqliteStore>,
    /// What runs when a job finishes.
    pub(crate) hooks: std::sync::Arc<crate::hooks::Hooks>,
    /// The executor types, for `plugins`.
    pub(crate) types: Vec<TypeEntry>,
    /// The remote executor: `connect` re-attaches its detached jobs.
    pub(crate) remote: std::sync::Arc<jobs_remote::SshExecutor>,
    /// Set once the session is ending: no new jobs.
    pub(crate) closing: AtomicBool,
    /// Wakes the accept loop to exit.
    pub(crate) exit: Notify,
    /// How long a connection may sit between requests.
    pub(crate) idle: std::time::Duration,
    /// True once the session has ended: every event is published.
    pub(crate) closed: tokio::sync::watch::Sender<bool>,
}

impl Daemon {
    /// Ends the session once: stops running jobs (detached ones go on).
    pub(crate) async fn close(&self) {
        if !self.closing.swap(true, Ordering::SeqCst) {
            info!("ending the session");
        }
        self.session.close().await;
        self.closed.send_replace(true);
    }

    /// Resolves once the session has ended and published its last event.
    pub(crate) async fn session_ended(&self) {
        let mut closed = self.closed.subscribe();
        // An error means the sender is gone: the daemon is gone too.
        let _ = closed.wait_for(|c| *c).await;
    }
}
