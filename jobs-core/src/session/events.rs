//! State-change events: every change of a job's state (its creation, each
//! transition, its removal) becomes a [`JobEvent`] with a session-wide
//! sequence number, written to the store with the row it describes and
//! then handed to the session's subscribers.
//!
//! Numbers are given under the table's lock, and the event is written and
//! published before the lock is released, so the store and every
//! subscriber see events in the order of their numbers. A subscriber reads
//! from a bounded channel: one that falls behind is told how many events it
//! missed ([`Lagged`]) and never slows the jobs down. With nobody
//! subscribed and a store that keeps no events ([`Store::keeps_events`]),
//! an event is only a number: it is not even built.
//!
//! [`Store::keeps_events`]: crate::Store::keeps_events

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::{Inner, Session};
use crate::store::RowChange;
use crate::{Error, JobEvent, JobInfo, JobState};

/// How many events a subscriber may fall behind before it lags.
const CHANNEL: usize = 4096;

/// The session's numbering and its subscribers.
pub(crate) struct Events {
    /// The last number given.
    last: AtomicU64,
    tx: broadcast::Sender<JobEvent>,
}

impl Events {
    /// Numbering goes on after `last` (the highest the store holds).
    pub(crate) fn new(last: u64) -> Events {
        Events {
            last: AtomicU64::new(last),
            tx: broadcast::Sender::new(CHANNEL),
        }
    }
}

/// A subscriber fell behind: this many events were dropped for it. The
/// store still has them (see [`Session::events_after`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fell behind the session's events: {missed} missed")]
pub struct Lagged {
    /// How many events were missed.
    pub missed: u64,
}

/// The session's events as they happen, from the moment of
/// [`Session::subscribe`] on (see there).
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<JobEvent>,
}

impl EventStream {
    /// The next event; `Err(Lagged)` once if events were dropped for this
    /// subscriber since the last call (the one after it is the oldest still
    /// held); `None` once the session is gone.
    pub async fn next(&mut self) -> Option<Result<JobEvent, Lagged>> {
        match self.rx.recv().await {
            Ok(ev) => Some(Ok(ev)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Err(Lagged { missed })),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Like [`next`](Self::next), without waiting: `None` when no event
    /// is there yet (or the session is gone).
    pub fn try_next(&mut self) -> Option<Result<JobEvent, Lagged>> {
        match self.rx.try_recv() {
            Ok(ev) => Some(Ok(ev)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(Err(Lagged { missed })),
            Err(_) => None,
        }
    }
}

impl Session {
    /// The session's state changes from now on: each job's creation, every
    /// transition and its removal, numbered session-wide (PowerShell's
    /// `Register-ObjectEvent` on a job's `StateChanged`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jobs_core::{async_trait, JobContext, JobExecutor, JobFailure, JobSpec, JobState, Session};
    ///
    /// struct Quick;
    /// #[async_trait]
    /// impl JobExecutor for Quick {
    ///     fn type_name(&self) -> &str {
    ///         "quick"
    ///     }
    ///     async fn run(&self, _: JobSpec, _: JobContext) -> Result<(), JobFailure> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let session = Session::new()?;
    /// session.register(Arc::new(Quick));
    /// let mut events = session.subscribe();
    /// let id = session.start(JobSpec::new("quick", "done at once"))?;
    /// let mut seen = Vec::new();
    /// while seen.last() != Some(&Some(JobState::Completed)) {
    ///     // `Err(Lagged)` if this subscriber fell behind; `None` once the
    ///     // session is gone.
    ///     let ev = session.block_on(events.next()).expect("the session is alive")?;
    ///     assert_eq!(ev.id, id);
    ///     seen.push(ev.to);
    /// }
    /// assert_eq!(
    ///     seen,
    ///     [Some(JobState::NotStarted), Some(JobState::Running), Some(JobState::Completed)]
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self) -> EventStream {
        // Under the table's lock, as events are numbered: whether an event
        // is built for subscribers is decided on either side of this, never
        // across it.
        let _t = self.inner.lock();
        EventStream {
            rx: self.inner.events.tx.subscribe(),
        }
    }

    /// Up to `limit` of the events the store holds with a number above
    /// `after`, oldest first (none from a store that keeps no events).
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<JobEvent>, Error> {
        Ok(self.inner.store.read_events(after, limit)?)
    }

    /// The number of the last event given so far.
    pub fn last_event(&self) -> u64 {
        self.inner.events.last.load(Ordering::SeqCst)
    }
}

impl Inner {
    /// The next event of `info`'s job, from `from` to `to`.
    pub(crate) fn event(
        &self,
        info: &JobInfo,
        from: Option<JobState>,
        to: Option<JobState>,
    ) -> JobEvent {
        JobEvent {
            seq: self.events.last.fetch_add(1, Ordering::SeqCst) + 1,
            time: SystemTime::now(),
            id: info.id,
            name: info.name.to_string(),
            type_name: info.type_name.to_string(),
            from,
            to,
            reason: info.reason.clone(),
            exit_code: info.exit_code,
        }
    }

    /// Writes `change` with the event from `from` to the row's state, then
    /// hands the event to the subscribers. Call with the table locked, so
    /// that numbers, writes and deliveries keep one order.
    pub(crate) fn record_change(
        &self,
        change: RowChange<'_>,
        info: &JobInfo,
        from: Option<JobState>,
    ) -> Result<(), Error> {
        let to = match change {
            RowChange::Delete(_) => None,
            _ => Some(info.state),
        };
        if self.events.tx.receiver_count() == 0 && !self.store.keeps_events() {
            // Nobody to hand the event to: it only takes its number.
            self.events.last.fetch_add(1, Ordering::SeqCst);
            return change.apply(self.store.as_ref()).map_err(Error::from);
        }
        let ev = self.event(info, from, to);
        // Published once stored: a reader that resumes from the store never
        // meets an event a subscriber saw but the store lost.
        self.store
            .write_events(change, std::slice::from_ref(&ev))
            .map_err(Error::from)?;
        self.publish(ev);
        Ok(())
    }

    /// Hands an event to the subscribers, if any.
    fn publish(&self, ev: JobEvent) {
        // Fails only when nobody listens.
        let _ = self.events.tx.send(ev);
    }

    /// The removal of job `id`, with its row. Call with the table locked.
    pub(crate) fn record_removal(&self, info: &JobInfo) -> Result<(), Error> {
        self.record_change(RowChange::Delete(info.id), info, Some(info.state))
    }
}
