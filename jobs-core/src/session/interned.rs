//! The few strings many job rows repeat (their type names, their usual
//! locations), kept once and shared by every row that shows them.

use crate::{JobId, SharedStr};

/// How many distinct strings are kept: a session runs a handful of types
/// in a handful of places; a string past these is simply not shared.
const KEPT: usize = 16;

/// Recently used row strings, shared (see the module's doc).
#[derive(Default)]
pub(crate) struct Interned {
    kept: Vec<SharedStr>,
    /// Where the next string goes once all places are taken.
    next: usize,
}

impl Interned {
    /// The shared copy of `s`, made on first use.
    pub(crate) fn get(&mut self, s: &str) -> SharedStr {
        match self.find(s) {
            Some(kept) => kept,
            None => self.keep(SharedStr::from(s)),
        }
    }

    /// [`get`](Self::get) of an owned string.
    pub(crate) fn get_owned(&mut self, s: String) -> SharedStr {
        match self.find(&s) {
            Some(kept) => kept,
            None => self.keep(SharedStr::from(s)),
        }
    }

    fn find(&self, s: &str) -> Option<SharedStr> {
        self.kept.iter().find(|k| k.as_str() == s).cloned()
    }

    fn keep(&mut self, s: SharedStr) -> SharedStr {
        if self.kept.len() < KEPT {
            self.kept.push(s.clone());
        } else if let Some(slot) = self.kept.get_mut(self.next) {
            *slot = s.clone();
            self.next = (self.next + 1) % KEPT;
        }
        s
    }
}

/// A job's default name, `Job<id>`, made without a `String` in between.
pub(crate) fn default_name(id: JobId) -> SharedStr {
    use std::io::Write;
    let mut buf = [0u8; 24];
    let mut w = &mut buf[..];
    // "Job" and at most 20 digits fit.
    let _ = write!(w, "Job{id}");
    let len = 24 - w.len();
    match buf.get(..len).map(std::str::from_utf8) {
        Some(Ok(s)) => SharedStr::from(s),
        _ => SharedStr::from(format!("Job{id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_string_is_shared_and_an_old_one_makes_room() {
        let mut i = Interned::default();
        let a = i.get("localhost");
        let b = i.get_owned("localhost".to_string());
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        for n in 0..KEPT {
            i.get(&format!("host{n}"));
        }
        // "localhost" made room for the last one; it is made again.
        let c = i.get("localhost");
        assert_eq!(c, "localhost");
        assert!(!std::ptr::eq(a.as_str(), c.as_str()));
        assert_eq!(i.kept.len(), KEPT);
    }

    #[test]
    fn default_names() {
        assert_eq!(default_name(7), "Job7");
        assert_eq!(default_name(u64::MAX), format!("Job{}", u64::MAX));
    }
}
