//! What the session keeps per job that the running work touches directly
//! (`JobCell`), and the stop request both sides see (`StopToken`). Both the
//! session and `JobContext` hold these; neither module depends on the other
//! through them.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
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
    /// thread of their own and say when they did. Made on first use, as
    /// `tx`: a channel costs hundreds of bytes, and most of a large
    /// batch's jobs wait queued, never asked.
    applied: OnceLock<watch::Sender<bool>>,
    /// The stop flag for async waiters; made under `lock`, and sent to
    /// under it, so that a waiter made as a stop comes never misses it.
    tx: OnceLock<watch::Sender<bool>>,
    lock: Mutex<()>,
    cv: Condvar,
    options: Mutex<StopOptions>,
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
                applied: OnceLock::new(),
                tx: OnceLock::new(),
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
        if let Some(tx) = self.inner.tx.get() {
            tx.send_replace(true);
        }
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
        if let Some(tx) = self.inner.tx.get() {
            tx.send_replace(false);
        }
    }

    /// The stop flag's channel, made on first use with the flag as it is.
    fn tx(&self) -> &watch::Sender<bool> {
        if let Some(tx) = self.inner.tx.get() {
            return tx;
        }
        let _g = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner
            .tx
            .get_or_init(|| watch::Sender::new(self.inner.flag.load(Ordering::SeqCst)))
    }

    /// The applied pause's channel, made on first use.
    fn applied_tx(&self) -> &watch::Sender<bool> {
        self.inner.applied.get_or_init(|| watch::Sender::new(false))
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
        if let Some(tx) = self.inner.tx.get() {
            tx.send_modify(|_| {});
        }
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
        let mut rx = self.tx().subscribe();
        while self.is_paused() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Says that the work applied the pause as it now stands (`true`: it
    /// is paused), for an executor whose `suspend` waits until it did
    /// ([`applied`](Self::applied)).
    pub fn set_applied(&self, paused: bool) {
        self.applied_tx().send_replace(paused);
    }

    /// Resolves once the work said it applied `paused`
    /// ([`set_applied`](Self::set_applied)), or a stop was requested.
    pub async fn applied(&self, paused: bool) {
        let mut rx = self.applied_tx().subscribe();
        let mut stop = self.tx().subscribe();
        loop {
            if *rx.borrow_and_update() == paused || self.is_stopped() {
                return;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                r = stop.changed() => if r.is_err() { return },
            }
        }
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
        let mut rx = self.tx().subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail.
        let _ = rx.wait_for(|stopped| *stopped).await;
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
    pub(crate) changed: watch::Sender<u64>,
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
            changed: watch::Sender::new(0),
            stop: StopToken::new(),
            exit_code: Mutex::new(None),
            store_error: Mutex::new(None),
        }
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}
