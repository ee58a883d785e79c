//! `Throttle`: how many jobs of a pool may run at once, and the queue of
//! those waiting for a slot. A job type has one (PowerShell's
//! `-ThrottleLimit`); so has every parent, for its children.

use std::collections::VecDeque;

use crate::JobId;

/// A limit on running jobs, the count of those running, and the jobs
/// queued behind it in start order.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// At most this many run at once (none: no limit).
    limit: Option<usize>,
    running: usize,
    queue: VecDeque<JobId>,
}

impl Throttle {
    /// A throttle with this limit and nothing running or queued.
    pub(crate) fn new(limit: Option<usize>) -> Self {
        Throttle {
            limit,
            ..Throttle::default()
        }
    }

    /// The limit, if one was set.
    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Sets the limit; queued jobs start at the next [`Throttle::next`].
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = Some(limit);
    }

    /// Queues a job behind the others.
    pub(crate) fn enqueue(&mut self, id: JobId) {
        self.queue.push_back(id);
    }

    /// Takes a queued job out without running it (it was stopped).
    pub(crate) fn dequeue(&mut self, id: JobId) {
        self.queue.retain(|&q| q != id);
    }

    /// The next queued job, if the limit lets one more run; it then counts
    /// as running.
    pub(crate) fn next(&mut self) -> Option<JobId> {
        if self.running >= self.limit.unwrap_or(usize::MAX) {
            return None;
        }
        let id = self.queue.pop_front()?;
        self.running += 1;
        Some(id)
    }

    /// Counts a job as running that did not come through the queue (one
    /// resumed or adopted).
    pub(crate) fn occupy(&mut self) {
        self.running += 1;
    }

    /// Frees the slot of a job that ended.
    pub(crate) fn release(&mut self) {
        self.running = self.running.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn queued_jobs_start_in_order_as_slots_free() {
        let mut t = Throttle::new(Some(2));
        for id in 1..=4 {
            t.enqueue(id);
        }
        assert_eq!((t.next(), t.next(), t.next()), (Some(1), Some(2), None));
        t.dequeue(3);
        t.release();
        assert_eq!((t.next(), t.next()), (Some(4), None));
    }

    #[test]
    fn no_limit_runs_everything() {
        let mut t = Throttle::new(None);
        t.occupy();
        t.enqueue(7);
        assert_eq!(t.next(), Some(7));
    }
}
