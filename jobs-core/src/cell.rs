//! What the session keeps per job that the running work touches directly
//! (`JobCell`), and the stop request both sides see (`StopToken`). Both the
//! session and `JobContext` hold these; neither module depends on the other
//! through them.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::JobId;

/// How a stop asks a job's work to end, for executors that can: the first
/// signal to send (default SIGTERM) and how long to wait before SIGKILL
/// (default: the executor's grace period). An executor that cannot signal
/// ignores both and stops as it always does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StopOptions {
    /// The first signal (a number, as `kill -N`); none: SIGTERM.
    pub signal: Option<i32>,
    /// The time between the first signal and SIGKILL; none: the executor's.
    pub grace: Option<Duration>,
}

/// A stop request, seen from the job's side: a flag to check, a future to
/// await, and a blocking wait for plain threads. Cloning shares the request.
#[derive(Clone)]
pub struct StopToken {
    inner: Arc<StopInner>,
}

struct StopInner {
    flag: AtomicBool,
    /// A suspend is in force (see `session/suspend.rs`): work that pauses
    /// cooperatively waits at its next pause point.
    paused: AtomicBool,
    /// The pause as the work applied it, for executors that pause from a
    /// thread of their own and say when they did.
    applied: AtomicBool,
    /// Wakes async waiters after any of the three flags changed; they look
    /// again (a plain `Notify`: no allocation of its own, unlike a channel).
    notify: Notify,
    lock: Mutex<()>,
    cv: Condvar,
    options: Mutex<StopOptions>,
}

impl StopInner {
    /// Resolves once `done` holds, looking again after every change.
    async fn until(&self, done: impl Fn() -> bool) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the look: a change after it wakes us.
            notified.as_mut().enable();
            if done() {
                return;
            }
            notified.await;
        }
    }
}

impl fmt::Debug for StopToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopToken")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Default for StopToken {
    fn default() -> Self {
        Self::new()
    }
}

impl StopToken {
    /// A token with no stop requested.
    pub fn new() -> Self {
        StopToken {
            inner: Arc::new(StopInner {
                flag: AtomicBool::new(false),
                paused: AtomicBool::new(false),
                applied: AtomicBool::new(false),
                notify: Notify::new(),
                lock: Mutex::new(()),
                cv: Condvar::new(),
                options: Mutex::new(StopOptions::default()),
            }),
        }
    }

    /// Requests the stop (idempotent). A stop ends any pause: paused work
    /// wakes up to see it.
    pub fn trigger(&self) {
        let _g = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.paused.store(false, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
        self.inner.cv.notify_all();
    }

    /// Says how the stop requested next should end the work (see
    /// [`StopOptions`]); a stop already under way keeps its own.
    pub(crate) fn set_options(&self, options: StopOptions) {
        if !self.is_stopped() {
            *self.inner.options.lock().unwrap_or_else(|p| p.into_inner()) = options;
        }
    }

    /// How the requested stop should end the work.
    pub fn options(&self) -> StopOptions {
        *self.inner.options.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Withdraws the request, for another attempt of the same job.
    pub(crate) fn reset(&self) {
        *self.inner.options.lock().unwrap_or_else(|p| p.into_inner()) = StopOptions::default();
        let _g = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.flag.store(false, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Sets or lifts the pause of a suspended job, waking paused threads.
    pub(crate) fn set_paused(&self, paused: bool) {
        let _g = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.paused.store(paused, Ordering::SeqCst);
        self.inner.cv.notify_all();
        // An async waiter on the stop future is woken to look again too.
        self.inner.notify.notify_waiters();
    }

    /// Whether the job is suspended: cooperative work waits at its next
    /// pause point ([`pause_point`](Self::pause_point)).
    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst) && !self.is_stopped()
    }

    /// Blocks the calling thread while the job is suspended; returns at
    /// once when it is not, and as soon as it is resumed or stopped. For
    /// code on plain threads: a script engine calls it between operations.
    pub fn pause_point(&self) {
        if !self.is_paused() {
            return;
        }
        let guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _g = self
            .inner
            .cv
            .wait_while(guard, |_| self.is_paused())
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Resolves once the job is not suspended (resumed or stopped).
    pub async fn unpaused(&self) {
        self.inner.until(|| !self.is_paused()).await
    }

    /// Says that the work applied the pause as it now stands (`true`: it
    /// is paused), for an executor whose `suspend` waits until it did
    /// ([`applied`](Self::applied)).
    pub fn set_applied(&self, paused: bool) {
        self.inner.applied.store(paused, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Resolves once the work said it applied `paused`
    /// ([`set_applied`](Self::set_applied)), or a stop was requested.
    pub async fn applied(&self, paused: bool) {
        self.inner
            .until(|| self.inner.applied.load(Ordering::SeqCst) == paused || self.is_stopped())
            .await
    }

    /// Sleeps for `d` of running time, or until a stop: time spent
    /// suspended does not count. Returns whether a stop was requested.
    /// For code on plain threads (a script's `sleep`).
    pub fn sleep_running(&self, d: Duration) -> bool {
        let mut left = d;
        loop {
            self.pause_point();
            if self.is_stopped() {
                return true;
            }
            let began = std::time::Instant::now();
            let guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
            let (_g, res) = self
                .inner
                .cv
                .wait_timeout_while(guard, left, |_| !self.is_stopped() && !self.is_paused())
                .unwrap_or_else(|p| p.into_inner());
            if self.is_stopped() {
                return true;
            }
            if res.timed_out() {
                return false;
            }
            left = left.saturating_sub(began.elapsed());
            if left.is_zero() {
                return false;
            }
        }
    }

    /// Resolves once a stop is requested.
    pub async fn stopped(&self) {
        self.inner.until(|| self.is_stopped()).await
    }

    /// Blocks the calling thread until a stop is requested or `timeout`
    /// passes; returns whether a stop was requested. For code on plain threads.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (_g, _) = self
            .inner
            .cv
            .wait_timeout_while(guard, timeout, |_| !self.is_stopped())
            .unwrap_or_else(|p| p.into_inner());
        self.is_stopped()
    }
}

/// What the session keeps per job that the running work touches directly.
pub(crate) struct JobCell {
    pub(crate) id: JobId,
    pub(crate) instance_id: Uuid,
    /// Set when the job finished: later records are dropped.
    pub(crate) closed: AtomicBool,
    /// Holds sequence assignment and append together, so one job's records
    /// are stored in the order of their sequence numbers.
    pub(crate) emit_lock: Mutex<()>,
    /// Bumped on every record and state change of this job.
    changes: Changes,
    pub(crate) stop: StopToken,
    pub(crate) exit_code: Mutex<Option<i32>>,
    pub(crate) store_error: Mutex<Option<String>>,
}

impl JobCell {
    pub(crate) fn new(id: JobId, instance_id: Uuid) -> Self {
        JobCell {
            id,
            instance_id,
            closed: AtomicBool::new(false),
            emit_lock: Mutex::new(()),
            changes: Changes::default(),
            stop: StopToken::new(),
            exit_code: Mutex::new(None),
            store_error: Mutex::new(None),
        }
    }

    /// Tells the job's watchers that something changed. With none (the
    /// common case: most jobs are never watched) it costs two atomic
    /// operations, no lock.
    pub(crate) fn bump(&self) {
        let c = &self.changes;
        c.version.fetch_add(1, Ordering::SeqCst);
        if c.watchers.load(Ordering::SeqCst) > 0 {
            c.notify.notify_waiters();
        }
    }

    /// A watcher of the job's changes, from now on. Watch before looking at
    /// what the change would be about (its state, its records): a change
    /// made after the look then always wakes the watcher.
    pub(crate) fn watch(self: &Arc<Self>) -> CellWatch {
        self.changes.watchers.fetch_add(1, Ordering::SeqCst);
        CellWatch {
            seen: self.changes.version.load(Ordering::SeqCst),
            cell: Arc::clone(self),
        }
    }
}

/// A job's change counter: its version and its watchers. Inline in the
/// cell, so a job that nobody watches costs no allocation for it.
///
/// Every operation is sequentially consistent, so of a bump (version, then
/// watchers) and a new watcher (watchers, then version) at least one sees
/// the other: either the bump wakes the watcher, or the watcher's first
/// look already sees the version the bump made.
#[derive(Default)]
struct Changes {
    version: AtomicU64,
    watchers: AtomicUsize,
    notify: Notify,
}

/// Watches one job's changes (see [`JobCell::watch`]). Holds the cell, so
/// a job removed meanwhile is seen by looking again (its removal bumps).
pub(crate) struct CellWatch {
    cell: Arc<JobCell>,
    seen: u64,
}

impl CellWatch {
    /// Resolves once the job changed since the watch began or the last
    /// call returned.
    pub(crate) async fn changed(&mut self) {
        let c = &self.cell.changes;
        loop {
            let notified = c.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let now = c.version.load(Ordering::SeqCst);
            if now != self.seen {
                self.seen = now;
                return;
            }
            notified.await;
        }
    }
}

impl Drop for CellWatch {
    fn drop(&mut self) {
        self.cell.changes.watchers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Bumps a change counter (the session's), waking its receivers. With none
/// it costs a fence and a load instead of the channel's eight notification
/// locks.
///
/// The fence pairs with the one in [`subscribe`]: either the bump sees the
/// new receiver, or the receiver's look that follows its subscription sees
/// the change the bump announces, so no change is missed.
pub(crate) fn bump(tx: &watch::Sender<u64>) {
    std::sync::atomic::fence(Ordering::SeqCst);
    if tx.receiver_count() > 0 {
        tx.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Subscribes to a change counter bumped by [`bump`].
pub(crate) fn subscribe(tx: &watch::Sender<u64>) -> watch::Receiver<u64> {
    let rx = tx.subscribe();
    std::sync::atomic::fence(Ordering::SeqCst);
    rx
}
