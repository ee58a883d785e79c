//! The session's jobs by id. Ids are handed out in order, so the jobs sit
//! in a run of slots indexed by id: a look-up is an index, not a search
//! through a tree (a job's life looks itself up a score of times). Jobs
//! whose neighbours were removed long ago move to an ordered map, so the
//! slots stay few: at most four per job held, past the first thousand.

use std::collections::{BTreeMap, VecDeque};

use crate::JobId;

/// Below this many slots, holes are left as they are.
const SMALL: usize = 1024;

/// Jobs by id, iterated in id order (see the module's doc).
pub(crate) struct JobMap<V> {
    /// Slot `i` holds job `base + i`; never starts with an empty slot.
    slots: VecDeque<Option<V>>,
    base: JobId,
    /// How many slots are filled.
    filled: usize,
    /// Jobs below `base`.
    old: BTreeMap<JobId, V>,
}

impl<V> Default for JobMap<V> {
    fn default() -> Self {
        JobMap {
            slots: VecDeque::new(),
            base: 0,
            filled: 0,
            old: BTreeMap::new(),
        }
    }
}

impl<V> JobMap<V> {
    fn slot(&self, id: JobId) -> Option<usize> {
        id.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
    }

    /// The job `id`.
    pub(crate) fn get(&self, id: &JobId) -> Option<&V> {
        match self.slot(*id) {
            Some(i) => self.slots.get(i)?.as_ref(),
            None => self.old.get(id),
        }
    }

    /// The job `id`, to change.
    pub(crate) fn get_mut(&mut self, id: &JobId) -> Option<&mut V> {
        match self.slot(*id) {
            Some(i) => self.slots.get_mut(i)?.as_mut(),
            None => self.old.get_mut(id),
        }
    }

    /// Whether job `id` is there.
    pub(crate) fn contains_key(&self, id: &JobId) -> bool {
        self.get(id).is_some()
    }

    /// How many jobs there are.
    pub(crate) fn len(&self) -> usize {
        self.filled + self.old.len()
    }

    /// Puts job `id` in, returning the one it replaces.
    pub(crate) fn insert(&mut self, id: JobId, v: V) -> Option<V> {
        if self.slots.is_empty() && self.old.last_key_value().is_none_or(|(&k, _)| k < id) {
            self.base = id;
        }
        let Some(i) = self.slot(id) else {
            return self.old.insert(id, v);
        };
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        let old = self.slots.get_mut(i).and_then(|s| s.replace(v));
        if old.is_none() {
            self.filled += 1;
        }
        old
    }

    /// Takes job `id` out.
    pub(crate) fn remove(&mut self, id: &JobId) -> Option<V> {
        let Some(i) = self.slot(*id) else {
            return self.old.remove(id);
        };
        let v = self.slots.get_mut(i)?.take()?;
        self.filled -= 1;
        // The slots start with a job, and are mostly filled.
        while self.slots.front().is_some_and(Option::is_none)
            || (self.slots.len() > SMALL && self.filled * 4 < self.slots.len())
        {
            if let Some(Some(kept)) = self.slots.pop_front() {
                self.filled -= 1;
                self.old.insert(self.base, kept);
            }
            self.base += 1;
        }
        Some(v)
    }

    /// Every job, in id order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.old.values().chain(self.slots.iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(m: &JobMap<JobId>) -> Vec<JobId> {
        m.values().copied().collect()
    }

    #[test]
    fn looks_up_inserts_and_removes_like_an_ordered_map() {
        let mut m = JobMap::default();
        let mut reference = BTreeMap::new();
        // Ids in order, a few out of order (as a restore may give them),
        // removals here and there.
        let mut ops: Vec<(bool, JobId)> = (1..3000).map(|i| (true, i)).collect();
        ops.extend([(true, 5000), (true, 4000)]);
        ops.extend((1..3000).filter(|i| i % 3 != 0).map(|i| (false, i)));
        ops.extend([(true, 2), (false, 5000), (true, 1)]);
        ops.extend((1..2990).filter(|i| i % 3 == 0).map(|i| (false, i)));
        for (insert, id) in ops {
            if insert {
                assert_eq!(m.insert(id, id), reference.insert(id, id), "insert {id}");
            } else {
                assert_eq!(m.remove(&id), reference.remove(&id), "remove {id}");
            }
            assert_eq!(m.len(), reference.len());
        }
        assert_eq!(ids(&m), reference.keys().copied().collect::<Vec<_>>());
        for id in 0..6000 {
            assert_eq!(m.get(&id), reference.get(&id), "get {id}");
            assert_eq!(m.contains_key(&id), reference.contains_key(&id));
        }
        if let Some(v) = m.get_mut(&4000) {
            *v = 7;
        }
        assert_eq!(m.get(&4000), Some(&7));
    }

    #[test]
    fn an_old_job_kept_among_many_removed_does_not_keep_their_slots() {
        let mut m = JobMap::default();
        m.insert(1, ());
        for id in 2..100_000 {
            m.insert(id, ());
            m.remove(&id);
        }
        assert!(m.slots.len() <= SMALL + 1, "{} slots", m.slots.len());
        assert!(m.contains_key(&1));
        m.insert(100_000, ());
        assert_eq!(m.len(), 2);
        assert_eq!(m.values().count(), 2);
    }

    #[test]
    fn a_restore_in_any_order() {
        let mut m = JobMap::default();
        for id in [7, 3, 9, 1, 8] {
            m.insert(id, id);
        }
        assert_eq!(ids(&m), vec![1, 3, 7, 8, 9]);
        m.insert(10, 10);
        assert_eq!(m.get(&10), Some(&10));
        assert_eq!(ids(&m), vec![1, 3, 7, 8, 9, 10]);
    }
}
