//! `receive --tag` and `receive --gather`: output lines named by the child
//! that wrote them, or children with the same output written once.
//!
//! A child is named by its host (remote jobs), its item (batches) or its
//! name (see `summary::label`), looked up on a second connection to the
//! daemon while the receive streams on the first.
//!
//! `--tag` writes each complete output line as `host: line` (`item<TAB>line`
//! for a batch's child), the form `dshbak` and `clubak` read. A line is
//! held until its end comes, so that lines of different children never
//! mix; a line still unfinished when the daemon has nothing more to send
//! for now is written then, ended with a newline (its rest, if any, comes
//! later as a line of its own). A record counts as received once every
//! byte of it reached the reader, as without `--tag`.
//!
//! `--gather` must see everything before it writes anything, so it receives
//! with `--keep`, writes each set of children with identical output once
//! under `==== web[01-05,07] (6) ====` (children without output are left
//! out, as `dshbak -c` does), and only once the reader took all of that
//! consumes the records it showed (unless `--keep` was asked). A gather
//! whose reader goes away, or that is interrupted, consumes nothing.

use std::collections::{BTreeMap, HashMap};

use jobs_core::{JobId, JobInfo};
use jobs_hostlist::fold;
use jobs_protocol::{Op, Response};

use crate::client::Client;
use crate::summary::label;

/// Names of jobs, looked up on a connection of their own.
pub(crate) struct Names {
    side: Option<Client>,
    known: HashMap<JobId, Named>,
}

/// How a job is named, and how `--tag` separates the name from the line.
#[derive(Clone)]
struct Named {
    label: String,
    separator: &'static str,
}

impl Named {
    fn of(job: &JobInfo) -> Named {
        Named {
            label: label(job),
            separator: if job.item.is_some() { "\t" } else { ": " },
        }
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("known", &self.known.len())
            .finish()
    }
}

impl Names {
    /// Names from `side` (a connection not used for the receive), with the
    /// jobs `ids` and their children looked up at once.
    pub(crate) fn new(side: Option<Client>, ids: &[JobId]) -> Names {
        let mut names = Names {
            side,
            known: HashMap::new(),
        };
        for &id in ids {
            names.look_up(id);
        }
        names
    }

    fn look_up(&mut self, id: JobId) {
        let Some(side) = self.side.as_mut() else {
            return;
        };
        if let Ok(Response::Shown { job, children, .. }) = side.call(Op::Show { id }) {
            self.known.insert(job.id, Named::of(&job));
            for c in &children {
                self.known.insert(c.id, Named::of(c));
            }
        }
    }

    fn get(&mut self, id: JobId) -> Named {
        if !self.known.contains_key(&id) {
            self.look_up(id);
        }
        self.known.get(&id).cloned().unwrap_or_else(|| Named {
            // Removed meanwhile: its id is all there is.
            label: format!("job {id}"),
            separator: ": ",
        })
    }
}

/// `--tag`: complete lines prefixed, unfinished ones held per job.
#[derive(Debug)]
pub(crate) struct Tagger {
    names: Names,
    unfinished: BTreeMap<JobId, Vec<u8>>,
}

/// What [`Tagger::feed`] did with a job's bytes.
pub(crate) struct Fed {
    /// Bytes held before this feed were written out.
    pub(crate) earlier_written: bool,
    /// The job has an unfinished line held now.
    pub(crate) holding: bool,
}

impl Tagger {
    /// A tagger naming jobs by `names`.
    pub(crate) fn new(names: Names) -> Tagger {
        Tagger {
            names,
            unfinished: BTreeMap::new(),
        }
    }

    /// Appends to `out` the lines of `job` that `data` completes, each
    /// prefixed; holds what follows the last newline.
    pub(crate) fn feed(&mut self, job: JobId, data: &[u8], out: &mut Vec<u8>) -> Fed {
        let held = self.unfinished.entry(job).or_default();
        let had = !held.is_empty();
        held.extend_from_slice(data);
        let Some(last_nl) = held.iter().rposition(|&b| b == b'\n') else {
            return Fed {
                earlier_written: false,
                holding: true,
            };
        };
        let rest = held.split_off(last_nl + 1);
        let lines = std::mem::replace(held, rest);
        let holding = !held.is_empty();
        let named = self.names.get(job);
        for line in lines.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(named.label.as_bytes());
            out.extend_from_slice(named.separator.as_bytes());
            out.extend_from_slice(line);
        }
        Fed {
            earlier_written: had,
            holding,
        }
    }

    /// Appends to `out` every held line, ended with a newline; returns the
    /// jobs whose lines those were.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) -> Vec<JobId> {
        let mut jobs = Vec::new();
        let held: Vec<(JobId, Vec<u8>)> = std::mem::take(&mut self.unfinished)
            .into_iter()
            .filter(|(_, b)| !b.is_empty())
            .collect();
        for (job, mut line) in held {
            line.push(b'\n');
            self.feed(job, &line, out);
            jobs.push(job);
        }
        self.unfinished.clear();
        jobs
    }
}

/// `--gather`: every job's output, kept until the end.
#[derive(Debug)]
pub(crate) struct Gatherer {
    names: Names,
    outputs: BTreeMap<JobId, Vec<u8>>,
}

impl Gatherer {
    /// A gatherer naming jobs by `names`.
    pub(crate) fn new(names: Names) -> Gatherer {
        Gatherer {
            names,
            outputs: BTreeMap::new(),
        }
    }

    /// Keeps output bytes of `job`.
    pub(crate) fn feed(&mut self, job: JobId, data: &[u8]) {
        self.outputs.entry(job).or_default().extend_from_slice(data);
    }

    /// The gathered view: one block per distinct output, headed by the
    /// folded set of the jobs that wrote it and their count, sorted by
    /// that set.
    pub(crate) fn render(&mut self) -> Vec<u8> {
        let mut sets: Vec<(Vec<u8>, Vec<String>)> = Vec::new();
        let outputs = std::mem::take(&mut self.outputs);
        for (job, output) in outputs {
            if output.is_empty() {
                continue;
            }
            let name = self.names.get(job).label;
            match sets.iter_mut().find(|(o, _)| *o == output) {
                Some((_, names)) => names.push(name),
                None => sets.push((output, vec![name])),
            }
        }
        let mut blocks: Vec<(String, Vec<u8>)> = sets
            .into_iter()
            .map(|(output, names)| {
                (
                    format!("==== {} ({}) ====\n", fold(&names), names.len()),
                    output,
                )
            })
            .collect();
        blocks.sort();
        let mut out = Vec::new();
        for (header, output) in blocks {
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(&output);
            if output.last() != Some(&b'\n') {
                out.push(b'\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pairs: &[(JobId, &str, bool)]) -> Names {
        Names {
            side: None,
            known: pairs
                .iter()
                .map(|&(id, label, item)| {
                    (
                        id,
                        Named {
                            label: label.into(),
                            separator: if item { "\t" } else { ": " },
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn tag_prefixes_whole_lines_and_holds_the_rest() {
        let mut t = Tagger::new(names(&[(1, "web1", false), (2, "a.txt", true)]));
        let mut out = Vec::new();
        let fed = t.feed(1, b"one\ntw", &mut out);
        assert!(fed.holding && !fed.earlier_written);
        t.feed(2, b"x\n", &mut out);
        let fed = t.feed(1, b"o\nthree", &mut out);
        assert!(fed.earlier_written && fed.holding);
        assert_eq!(t.flush(&mut out), [1]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "web1: one\na.txt\tx\nweb1: two\nweb1: three\n"
        );
        assert!(t.flush(&mut out).is_empty());
        assert_eq!(t.names.get(9).label, "job 9");
    }

    #[test]
    fn gather_folds_identical_outputs() {
        let mut g = Gatherer::new(names(&[
            (1, "web01", false),
            (2, "web02", false),
            (3, "web03", false),
            (4, "db1", false),
            (5, "web05", false),
        ]));
        for id in [1, 2, 3] {
            g.feed(id, b"same\n");
        }
        g.feed(4, b"other");
        g.feed(5, b"");
        assert_eq!(
            String::from_utf8_lossy(&g.render()),
            "==== db1 (1) ====\nother\n==== web[01-03] (3) ====\nsame\n"
        );
    }
}
