//! Another attempt begun by the executor itself, not by the session's
//! retries: an executor that moves a job's work elsewhere (a remote item
//! whose host could not be reached, run on another host) counts it, so the
//! job's `attempts` tells how many tries its work took.

use super::Inner;
use crate::{Error, JobId};

impl Inner {
    /// Counts one more attempt of job `id` and saves its row; returns the
    /// new count. A job with retries left keeps them all: the attempt the
    /// executor began is added to the total the retries' announcements
    /// (`attempt K of M`) count against.
    pub(crate) fn count_attempt(&self, id: JobId) -> Result<u32, Error> {
        let mut t = self.lock();
        let e = t.jobs.get_mut(&id).ok_or(Error::no_such_job(id))?;
        e.info.attempts = e.info.attempts.saturating_add(1);
        if let Some(retry) = e.retry.as_mut() {
            retry.total = retry.total.saturating_add(1);
        }
        let attempts = e.info.attempts;
        let saved = self.store.save_job_soon(&e.info);
        e.cell.bump();
        drop(t);
        self.bump();
        saved.map(|()| attempts).map_err(Error::from)
    }
}
