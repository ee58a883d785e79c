//! What the live view knows and shows: the job rows it has, which are
//! folded, which is selected, the filter, the progress of the jobs on
//! screen, the selected job's output tail and the status line's note.
//!
//! Rows are kept up to date by events, not by reading the table again: an
//! event changes a known row's state in place, and asks for the row again
//! only if it is on screen (its other columns may have changed). A job the
//! view has never seen is asked for once; a child's row only when its
//! parent is unfolded and the child is on screen. So a session of 10,000
//! jobs is read once at the start and then only by the screenful.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jobs_core::{JobEvent, JobId, JobInfo, JobState, ProgressRecord, BATCH_TYPE};
use jobs_protocol::ChildCounts;

use super::feed::{Records, Wanted};

/// The most unknown jobs asked for in one request.
const UNKNOWN_PER_FETCH: usize = 512;

/// One line of the table: a job, and how deep it is folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    /// The job.
    pub(crate) id: JobId,
    /// 0 for a top-level job, 1 for a child.
    pub(crate) depth: u8,
}

/// A question on the status line, answered with `y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirm {
    /// Stop the job?
    Stop(JobId),
    /// Remove the job?
    Remove(JobId),
}

/// What the bottom pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pane {
    /// The selected job's latest output.
    Output,
    /// Every property of the selected job (`show`).
    Details,
}

/// The rows to ask the daemon for, and the batches to count.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Fetch {
    /// Jobs seen in events only: their rows (a child's row tells its
    /// parent; a child that is not wanted is only noted as one).
    pub(crate) unknown: Vec<JobId>,
    /// Rows on screen that are missing or changed.
    pub(crate) rows: Vec<JobId>,
    /// Batches on screen whose children changed.
    pub(crate) counts: Vec<JobId>,
}

impl Fetch {
    /// Whether nothing is to be asked for.
    pub(crate) fn is_empty(&self) -> bool {
        self.unknown.is_empty() && self.rows.is_empty() && self.counts.is_empty()
    }
}

/// The live view's state.
#[derive(Debug)]
pub(crate) struct Model {
    /// Top-level jobs by id (the table's order).
    top: BTreeMap<JobId, JobInfo>,
    /// Children's rows, fetched as they come on screen.
    children: HashMap<JobId, JobInfo>,
    /// Jobs known to be children, with their parent.
    child_of: HashMap<JobId, JobId>,
    /// Parents shown unfolded.
    expanded: HashSet<JobId>,
    /// The table's lines, as filtered and folded.
    lines: Vec<Line>,
    /// Whether `lines` must be built again.
    lines_stale: bool,
    /// The selected job.
    selected: Option<JobId>,
    /// Its line.
    cursor: usize,
    /// The first line on screen.
    offset: usize,
    /// Lines the table shows at once.
    height: usize,
    /// The filter: a substring of the name or command.
    pub(crate) filter: String,
    /// Whether keys go to the filter.
    pub(crate) editing: bool,
    /// Each job's latest progress record.
    progress: HashMap<JobId, ProgressRecord>,
    /// Jobs whose progress was read after they finished: it is final.
    progress_final: HashSet<JobId>,
    /// Batches' children counts.
    counts: HashMap<JobId, ChildCounts>,
    /// Batches whose counts are to be read again.
    counts_stale: HashSet<JobId>,
    /// The selected job's output tail.
    tail: Option<(JobId, Vec<String>)>,
    /// A finished job whose tail was read after it finished: it is not
    /// read again until an event says the job changed.
    tail_final: Option<JobId>,
    /// Jobs seen in events and never as rows.
    unknown: BTreeSet<JobId>,
    /// Known rows that changed and are asked for again once on screen.
    changed: HashSet<JobId>,
    /// A question waiting for `y`.
    pub(crate) confirm: Option<Confirm>,
    /// What the bottom pane shows.
    pub(crate) pane: Pane,
    /// The status line's note (an action's outcome, a lost stream).
    pub(crate) note: String,
    /// The daemon's pid.
    pub(crate) pid: Option<u32>,
}

impl Model {
    /// A view of the top-level rows `rows`.
    pub(crate) fn new(rows: Vec<JobInfo>, pid: Option<u32>) -> Model {
        let mut m = Model {
            top: BTreeMap::new(),
            children: HashMap::new(),
            child_of: HashMap::new(),
            expanded: HashSet::new(),
            lines: Vec::new(),
            lines_stale: true,
            selected: None,
            cursor: 0,
            offset: 0,
            height: 10,
            filter: String::new(),
            editing: false,
            progress: HashMap::new(),
            progress_final: HashSet::new(),
            counts: HashMap::new(),
            counts_stale: HashSet::new(),
            tail: None,
            tail_final: None,
            unknown: BTreeSet::new(),
            changed: HashSet::new(),
            confirm: None,
            pane: Pane::Output,
            note: String::new(),
            pid,
        };
        m.rows(rows);
        m
    }

    /// A job's row, if known.
    pub(crate) fn row(&self, id: JobId) -> Option<&JobInfo> {
        self.top.get(&id).or_else(|| self.children.get(&id))
    }

    /// Takes rows read from the daemon.
    pub(crate) fn rows(&mut self, rows: Vec<JobInfo>) {
        for row in rows {
            let id = row.id;
            self.unknown.remove(&id);
            self.changed.remove(&id);
            if row.type_name == BATCH_TYPE && !self.counts.contains_key(&id) {
                self.counts_stale.insert(id);
            }
            match row.parent {
                None => {
                    // The lines change with a new job, a filtered one, or
                    // an unfolded parent's new children.
                    let same = self.filter.is_empty()
                        && self.top.get(&id).is_some_and(|old| {
                            !self.expanded.contains(&id) || old.children == row.children
                        });
                    if !same {
                        self.lines_stale = true;
                    }
                    self.top.insert(id, row);
                }
                Some(p) => {
                    if self.child_of.insert(id, p).is_none() {
                        self.counts_stale.insert(p);
                    }
                    if let Some(parent) = self.top.get_mut(&p) {
                        if let Err(at) = parent.children.binary_search(&id) {
                            parent.children.insert(at, id);
                            self.lines_stale |= self.expanded.contains(&p);
                        }
                    }
                    if self.expanded.contains(&p) {
                        self.children.insert(id, row);
                    }
                }
            }
        }
    }

    /// Forgets a job (removed, or gone when asked for).
    pub(crate) fn forget(&mut self, id: JobId) {
        self.unknown.remove(&id);
        self.changed.remove(&id);
        self.progress.remove(&id);
        self.counts.remove(&id);
        if let Some(row) = self.top.remove(&id) {
            for c in row.children {
                self.children.remove(&c);
                self.child_of.remove(&c);
            }
        }
        self.children.remove(&id);
        if let Some(p) = self.child_of.remove(&id) {
            if let Some(parent) = self.top.get_mut(&p) {
                parent.children.retain(|&c| c != id);
            }
            self.counts_stale.insert(p);
        }
        self.expanded.remove(&id);
        if self.tail.as_ref().is_some_and(|(t, _)| *t == id) {
            self.tail = None;
        }
        self.lines_stale = true;
    }

    /// Applies state changes, oldest first.
    pub(crate) fn events(&mut self, events: Vec<JobEvent>) {
        for e in events {
            if self.tail_final == Some(e.id) {
                self.tail_final = None;
            }
            let Some(state) = e.to else {
                self.forget(e.id);
                continue;
            };
            if let Some(&p) = self.child_of.get(&e.id) {
                self.counts_stale.insert(p);
            }
            let row = match self.top.get_mut(&e.id) {
                Some(r) => Some(r),
                None => self.children.get_mut(&e.id),
            };
            match row {
                Some(row) => {
                    if row.state != state {
                        row.state = state;
                        row.reason = e.reason.or(row.reason.take());
                        row.exit_code = e.exit_code.or(row.exit_code);
                        self.changed.insert(e.id);
                        if !self.filter.is_empty() {
                            self.lines_stale = true;
                        }
                    }
                }
                None if self.child_of.contains_key(&e.id) => {}
                None => {
                    self.unknown.insert(e.id);
                }
            }
        }
    }

    /// Takes the records read for the jobs on screen.
    pub(crate) fn records(&mut self, r: Records) {
        for row in &r.rows {
            if row.state.is_finished() {
                self.progress_final.insert(row.id);
            }
        }
        self.progress.extend(r.progress);
        if let Some((id, _)) = &r.tail {
            let id = *id;
            let finished = r
                .rows
                .iter()
                .any(|row| row.id == id && row.state.is_finished());
            self.tail_final = finished.then_some(id);
            self.tail = r.tail;
        }
        let known: Vec<JobInfo> = r
            .rows
            .into_iter()
            .filter(|row| self.row(row.id).is_some())
            .collect();
        self.rows(known);
    }

    /// Takes a batch's children counts.
    pub(crate) fn counts(&mut self, id: JobId, c: ChildCounts) {
        self.counts.insert(id, c);
    }

    /// A job's progress: a batch's done/total, else its latest progress
    /// record's percent.
    pub(crate) fn bar(&self, id: JobId) -> Option<Bar> {
        if let Some(c) = self.counts.get(&id) {
            return Some(Bar::Count {
                done: c.done,
                total: c.total,
            });
        }
        let p = self.progress.get(&id)?;
        Some(match p.percent {
            Some(pc) => Bar::Percent(pc.clamp(0.0, 100.0)),
            None => Bar::Activity,
        })
    }

    /// The selected job's output tail, if read.
    pub(crate) fn tail(&self) -> Option<&[String]> {
        match (&self.tail, self.selected) {
            (Some((id, lines)), Some(sel)) if *id == sel => Some(lines),
            _ => None,
        }
    }

    fn shown(&self, row: &JobInfo) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let needle = self.filter.to_lowercase();
        row.name.to_lowercase().contains(&needle) || row.command.to_lowercase().contains(&needle)
    }

    /// Builds the lines again if they are stale, keeping the selection.
    pub(crate) fn refresh(&mut self) {
        if !self.lines_stale {
            return;
        }
        self.lines_stale = false;
        let mut lines = Vec::with_capacity(self.top.len());
        for (id, row) in &self.top {
            if !self.shown(row) {
                continue;
            }
            lines.push(Line { id: *id, depth: 0 });
            if self.expanded.contains(id) {
                lines.extend(row.children.iter().map(|&c| Line { id: c, depth: 1 }));
            }
        }
        self.lines = lines;
        let at = self
            .selected
            .and_then(|s| self.lines.iter().position(|l| l.id == s));
        match at {
            Some(i) => self.cursor = i,
            None => {
                self.cursor = self.cursor.min(self.lines.len().saturating_sub(1));
                self.selected = self.lines.get(self.cursor).map(|l| l.id);
            }
        }
        self.scroll();
    }

    /// Sets how many lines the table shows at once.
    pub(crate) fn set_height(&mut self, h: usize) {
        self.height = h.max(1);
        self.scroll();
    }

    fn scroll(&mut self) {
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + self.height {
            self.offset = self.cursor + 1 - self.height;
        }
        let max = self.lines.len().saturating_sub(self.height);
        self.offset = self.offset.min(max);
    }

    /// The lines on screen.
    pub(crate) fn window(&self) -> &[Line] {
        let end = (self.offset + self.height).min(self.lines.len());
        &self.lines[self.offset.min(end)..end]
    }

    /// The selected job.
    pub(crate) fn selected(&self) -> Option<JobId> {
        self.selected
    }

    /// Whether the job's line is folded with children under it.
    pub(crate) fn fold(&self, id: JobId) -> Option<bool> {
        let row = self.top.get(&id)?;
        (!row.children.is_empty()).then(|| self.expanded.contains(&id))
    }

    /// Moves the selection by `by` lines.
    pub(crate) fn move_by(&mut self, by: isize) {
        if self.lines.is_empty() {
            return;
        }
        let last = self.lines.len() - 1;
        self.cursor = self.cursor.saturating_add_signed(by).min(last);
        self.selected = Some(self.lines[self.cursor].id);
        self.scroll();
    }

    /// Moves the selection to the first (`false`) or last line.
    pub(crate) fn move_to_end(&mut self, last: bool) {
        self.move_by(if last { isize::MAX } else { isize::MIN });
    }

    /// A page of lines, for Page Up/Down.
    pub(crate) fn page(&self) -> isize {
        isize::try_from(self.height).unwrap_or(1)
    }

    /// Unfolds (`true`) or folds the selected parent; `Some` if it has
    /// children.
    pub(crate) fn set_fold(&mut self, open: bool) -> Option<()> {
        let id = self.selected?;
        let row = self.top.get(&id)?;
        if row.children.is_empty() {
            return None;
        }
        if open {
            self.expanded.insert(id);
        } else {
            self.expanded.remove(&id);
            for c in &row.children {
                self.children.remove(c);
            }
        }
        self.lines_stale = true;
        Some(())
    }

    /// Selects the parent of the selected child.
    pub(crate) fn select_parent(&mut self) {
        if let Some(&p) = self.selected.and_then(|s| self.child_of.get(&s)) {
            self.selected = Some(p);
            self.lines_stale = true;
        }
    }

    /// Sets the filter; the selection stays if its job still shows.
    pub(crate) fn set_filter(&mut self, f: String) {
        self.filter = f;
        self.lines_stale = true;
    }

    /// What to ask the daemon for now.
    pub(crate) fn to_fetch(&self) -> Fetch {
        let mut f = Fetch {
            unknown: self
                .unknown
                .iter()
                .take(UNKNOWN_PER_FETCH)
                .copied()
                .collect(),
            ..Fetch::default()
        };
        for l in self.window() {
            let known = self.row(l.id);
            if known.is_none() || self.changed.contains(&l.id) {
                f.rows.push(l.id);
            }
            if self.counts_stale.contains(&l.id) {
                f.counts.push(l.id);
            }
        }
        f
    }

    /// Notes that the counts of `ids` were read.
    pub(crate) fn counted(&mut self, ids: &[JobId]) {
        for id in ids {
            self.counts_stale.remove(id);
        }
    }

    /// Which records the jobs on screen need: the selected job's output,
    /// and the progress of those that are not batches and whose final
    /// progress was not read yet.
    pub(crate) fn wanted(&self) -> Wanted {
        let progress = self
            .window()
            .iter()
            .filter(|l| !self.progress_final.contains(&l.id))
            .filter(|l| self.row(l.id).is_some_and(|r| r.type_name != BATCH_TYPE))
            .map(|l| l.id)
            .collect();
        Wanted {
            output: self.selected.filter(|&s| self.tail_final != Some(s)),
            progress,
        }
    }

    /// Top-level jobs counted by state, in the states' order.
    pub(crate) fn state_counts(&self) -> Vec<(JobState, usize)> {
        let mut by: BTreeMap<&'static str, (JobState, usize)> = BTreeMap::new();
        for row in self.top.values() {
            by.entry(row.state.as_str()).or_insert((row.state, 0)).1 += 1;
        }
        let mut v: Vec<(JobState, usize)> = by.into_values().collect();
        v.sort_by_key(|(s, _)| state_order(*s));
        v
    }

    /// How many lines the table has (filtered and folded).
    pub(crate) fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// How many top-level jobs there are.
    pub(crate) fn job_count(&self) -> usize {
        self.top.len()
    }
}

/// Where a state comes in the status line: the live ones first.
fn state_order(s: JobState) -> u8 {
    match s {
        JobState::Running => 0,
        JobState::NotStarted => 1,
        JobState::Blocked => 2,
        JobState::Suspending | JobState::Suspended => 3,
        JobState::Disconnected => 4,
        JobState::Stopping => 5,
        JobState::Completed => 6,
        JobState::Failed => 7,
        JobState::Stopped => 8,
    }
}

/// A progress bar's content.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bar {
    /// A job's percent complete.
    Percent(f64),
    /// A job that reports progress without a percent.
    Activity,
    /// A batch: children finished of all.
    Count {
        /// Finished children.
        done: usize,
        /// All children.
        total: usize,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::SystemTime;

    pub(crate) use crate::render::tests::job;

    fn event(id: JobId, to: Option<JobState>) -> JobEvent {
        JobEvent {
            seq: id,
            time: SystemTime::now(),
            id,
            name: String::new(),
            type_name: String::new(),
            from: None,
            to,
            reason: None,
            exit_code: None,
        }
    }

    #[test]
    fn events_change_rows_in_place_and_ask_only_for_what_shows() {
        let rows = (1..=10_000).map(|i| job(i, "j", "sleep 1")).collect();
        let mut m = Model::new(rows, Some(1));
        m.set_height(20);
        m.refresh();
        assert_eq!(m.window().len(), 20);
        assert!(m.to_fetch().is_empty());
        // A change far off screen: applied, not asked for.
        m.events(vec![event(9_000, Some(JobState::Completed))]);
        assert_eq!(m.row(9_000).map(|r| r.state), Some(JobState::Completed));
        assert!(m.to_fetch().is_empty());
        // On screen: asked for again.
        m.events(vec![event(3, Some(JobState::Failed))]);
        assert_eq!(m.to_fetch().rows, [3]);
        // A new job: asked for once.
        m.events(vec![event(10_001, Some(JobState::Running))]);
        assert_eq!(m.to_fetch().unknown, [10_001]);
        m.rows(vec![job(10_001, "new", "x")]);
        assert!(m.to_fetch().unknown.is_empty());
        // Removed.
        m.events(vec![event(2, None)]);
        m.refresh();
        assert_eq!(m.job_count(), 10_000);
        assert!(m.window().iter().all(|l| l.id != 2));
        m.move_to_end(true);
        assert_eq!(m.selected(), Some(10_001));
        assert_eq!(m.window().last().map(|l| l.id), Some(10_001));
    }

    #[test]
    fn children_fold_under_their_parent() {
        let mut p = job(1, "batch", "x");
        p.type_name = BATCH_TYPE.into();
        p.children = vec![2, 3];
        let mut m = Model::new(vec![p, job(4, "other", "y")], None);
        m.refresh();
        assert_eq!(m.line_count(), 2);
        assert_eq!(m.fold(1), Some(false));
        assert_eq!(m.to_fetch().counts, [1]);
        assert_eq!(m.set_fold(true), Some(()));
        m.refresh();
        assert_eq!(m.line_count(), 4);
        let f = m.to_fetch();
        assert_eq!(f.rows, [2, 3]);
        let mut c = job(2, "batch.1", "x");
        c.parent = Some(1);
        m.rows(vec![c]);
        assert_eq!(m.row(2).map(|r| r.name.as_str()), Some("batch.1"));
        m.move_by(1);
        assert_eq!(m.selected(), Some(2));
        m.select_parent();
        m.refresh();
        assert_eq!(m.selected(), Some(1));
        m.set_fold(false);
        m.refresh();
        assert_eq!(m.line_count(), 2);
    }

    #[test]
    fn a_finished_jobs_tail_is_read_until_read_after_it_finished() {
        let mut m = Model::new(vec![job(1, "a", "x"), job(2, "b", "y")], None);
        m.set_height(10);
        m.refresh();
        assert_eq!(m.wanted().output, Some(1));
        let mut done = job(1, "a", "x");
        done.state = JobState::Completed;
        m.records(Records {
            tail: Some((1, vec!["out".into()])),
            progress: HashMap::new(),
            rows: vec![done],
        });
        assert_eq!(m.tail(), Some(&["out".to_string()][..]));
        assert_eq!(m.wanted().output, None);
        // Another job's tail, then back: read again.
        m.move_by(1);
        assert_eq!(m.wanted().output, Some(2));
        m.records(Records {
            tail: Some((2, vec![])),
            progress: HashMap::new(),
            rows: vec![job(2, "b", "y")],
        });
        m.move_by(-1);
        assert_eq!(m.wanted().output, Some(1));
    }

    #[test]
    fn the_filter_matches_name_or_command() {
        let mut m = Model::new(
            vec![job(1, "build", "make"), job(2, "test", "cargo test")],
            None,
        );
        m.set_filter("CARGO".into());
        m.refresh();
        assert_eq!(m.window().iter().map(|l| l.id).collect::<Vec<_>>(), [2]);
        assert_eq!(m.selected(), Some(2));
        m.set_filter(String::new());
        m.refresh();
        assert_eq!(m.line_count(), 2);
        assert_eq!(m.selected(), Some(2));
    }
}
