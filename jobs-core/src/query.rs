//! `get`: the job table, filtered.

use glob::{MatchOptions, Pattern};

use crate::session::{Inner, Table};
use crate::{Error, JobId, JobInfo, JobState, Session};

/// Which jobs [`Session::get`] returns. The default is every top-level job.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Only these ids (children included when named). An id that does not
    /// exist is an error.
    pub ids: Vec<JobId>,
    /// Only jobs whose name matches this glob (case-insensitive).
    pub name: Option<String>,
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this type (case-insensitive).
    pub type_name: Option<String>,
    /// Only jobs whose command matches this glob (case-insensitive).
    pub command: Option<String>,
    /// Only jobs whose `has_more_data` is this.
    pub has_more_data: Option<bool>,
    /// Only the N most recently started jobs (after the other filters).
    pub newest: Option<usize>,
    /// Child jobs too (they are hidden otherwise, unless named by id).
    pub include_children: bool,
}

fn pattern(glob: &str) -> Result<Pattern, Error> {
    Pattern::new(glob).map_err(|e| Error::invalid_input(format!("bad pattern '{glob}': {e}")))
}

const GLOB_OPTS: MatchOptions = MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// A copy of a row with its derived `has_more_data`.
fn with_more(info: &JobInfo, more: bool) -> JobInfo {
    let mut row = info.clone();
    row.has_more_data = more;
    row
}

impl Inner {
    /// `has_more_data` as the model defines it: the job can still produce
    /// records, holds unreceived ones, or a child does.
    pub(crate) fn has_more_data(&self, t: &Table, id: JobId) -> bool {
        t.info(id)
            .is_some_and(|info| self.has_more_data_of(t, info))
    }

    /// [`has_more_data`](Self::has_more_data) of a row already at hand.
    fn has_more_data_of(&self, t: &Table, info: &JobInfo) -> bool {
        !info.state.is_finished()
            || self.store.has_records(info.id).unwrap_or(true)
            || info.children.iter().any(|&c| self.has_more_data(t, c))
    }

    pub(crate) fn snapshot(&self, t: &Table, id: JobId) -> Option<JobInfo> {
        t.info(id).map(|info| self.snapshot_of(t, info))
    }

    /// [`snapshot`](Self::snapshot) of a row already at hand.
    pub(crate) fn snapshot_of(&self, t: &Table, info: &JobInfo) -> JobInfo {
        let more = self.has_more_data_of(t, info);
        with_more(info, more)
    }
}

impl Session {
    /// One job's row.
    pub fn info(&self, id: JobId) -> Result<JobInfo, Error> {
        let t = self.inner.lock();
        self.inner.snapshot(&t, id).ok_or(Error::no_such_job(id))
    }

    /// The rows of the jobs the filter selects, in id order.
    pub fn get(&self, filter: &JobFilter) -> Result<Vec<JobInfo>, Error> {
        let name = filter.name.as_deref().map(pattern).transpose()?;
        let command = filter.command.as_deref().map(pattern).transpose()?;
        let t = self.inner.lock();
        t.check(&filter.ids)?;
        // Named ids are looked up, in id order, each once; otherwise the
        // table is read in order.
        let mut named = filter.ids.clone();
        named.sort_unstable();
        named.dedup();
        let rows: Box<dyn Iterator<Item = &JobInfo>> = if named.is_empty() {
            Box::new(t.infos())
        } else {
            Box::new(named.iter().filter_map(|&id| t.info(id)))
        };
        // Cheap filters first, on the table's own fields; `has_more_data`
        // (a store query per job) only for the jobs that pass them.
        let mut picked: Vec<&JobInfo> = Vec::with_capacity(if named.is_empty() {
            t.len()
        } else {
            named.len()
        });
        for i in rows {
            if named.is_empty() && i.parent.is_some() && !filter.include_children {
                continue;
            }
            if filter.state.is_some_and(|s| s != i.state) {
                continue;
            }
            if filter
                .type_name
                .as_deref()
                .is_some_and(|ty| !ty.eq_ignore_ascii_case(&i.type_name))
            {
                continue;
            }
            if name
                .as_ref()
                .is_some_and(|p| !p.matches_with(&i.name, GLOB_OPTS))
            {
                continue;
            }
            if command
                .as_ref()
                .is_some_and(|p| !p.matches_with(&i.command, GLOB_OPTS))
            {
                continue;
            }
            picked.push(i);
        }
        // Rows are copied out only once picked for good.
        let out = match (filter.newest, filter.has_more_data) {
            (newest, None) => {
                // Ids grow with start order, so the newest are the highest ids.
                let skip = newest.map_or(0, |n| picked.len().saturating_sub(n));
                picked[skip..]
                    .iter()
                    .map(|i| self.inner.snapshot_of(&t, i))
                    .collect()
            }
            (newest, Some(want)) => {
                let kept: Vec<&JobInfo> = picked
                    .into_iter()
                    .filter(|i| self.inner.has_more_data_of(&t, i) == want)
                    .collect();
                let skip = newest.map_or(0, |n| kept.len().saturating_sub(n));
                kept[skip..].iter().map(|i| with_more(i, want)).collect()
            }
        };
        Ok(out)
    }
}
