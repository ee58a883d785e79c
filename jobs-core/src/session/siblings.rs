//! A batch whose children can run fewer at once than its throttle says: an
//! executor that learns it (a remote batch whose hosts were retired, each
//! taking its slots with it) lowers the parent's throttle, so that the
//! items past what can run stay NotStarted in the batch's queue rather than
//! Running while they wait inside the executor.

use super::Inner;
use crate::{Error, JobId};

impl Inner {
    /// Lowers the throttle of job `id`'s parent to at most `limit` (at
    /// least 1); never raises it. A job without a parent is left alone.
    pub(crate) fn limit_siblings(&self, id: JobId, limit: usize) -> Result<(), Error> {
        let mut t = self.lock();
        let parent = t.jobs.get(&id).ok_or(Error::no_such_job(id))?.info.parent;
        let Some(pe) = parent.and_then(|p| t.jobs.get_mut(&p)) else {
            return Ok(());
        };
        let limit = limit.max(1);
        if pe.children.limit().is_none_or(|now| now > limit) {
            pe.children.set_limit(limit);
        }
        Ok(())
    }
}
