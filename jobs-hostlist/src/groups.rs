//! Host groups: the file `$JOBCTL_HOME/hosts`, one group a line.
//!
//! ```text
//! # comments and blank lines are skipped
//! web: web[01-20]
//! db: db1 db2,db3
//! all: @web @db
//! ```
//! A line is `NAME: PATTERN...`: the name (letters, digits, `_`, `-`,
//! `.`), a colon, then host patterns separated by spaces or commas, which
//! may name other groups. The patterns are checked when a group is used,
//! not when the file is read, so one bad group does not stop the others.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The groups of a hosts file, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Groups {
    origin: String,
    groups: BTreeMap<String, String>,
}

/// A hosts file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupsError {
    /// The file exists but cannot be read.
    #[error("cannot read the host groups file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A line is not `NAME: PATTERN...`, or names a group twice.
    #[error("{origin}, line {line}: {why}")]
    Syntax {
        /// Where the text came from (the file's path).
        origin: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// Whether `name` can name a group.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Groups {
    /// Reads a hosts file; a missing file is no groups.
    pub fn read(path: &Path) -> Result<Groups, GroupsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Groups::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Groups {
                origin: path.display().to_string(),
                groups: BTreeMap::new(),
            }),
            Err(source) => Err(GroupsError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses the text of a hosts file; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Groups, GroupsError> {
        let mut groups = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: String| GroupsError::Syntax {
                origin: origin.to_string(),
                line: i + 1,
                why,
            };
            let Some((name, patterns)) = line.split_once(':') else {
                return Err(bad(format!("expected 'NAME: PATTERN...', found '{line}'")));
            };
            let name = name.trim();
            if !valid_name(name) {
                return Err(bad(format!(
                    "'{name}' is not a group name (letters, digits, '_', '-', '.')"
                )));
            }
            if groups
                .insert(name.to_string(), patterns.trim().to_string())
                .is_some()
            {
                return Err(bad(format!("group '{name}' is defined twice")));
            }
        }
        Ok(Groups {
            origin: origin.to_string(),
            groups,
        })
    }

    /// The patterns of a group, as written, if there is such a group.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.groups.get(name).map(String::as_str)
    }

    /// Where the groups were read from (for messages).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The group names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_blank_lines() {
        let g = Groups::parse(
            "# all of them\n\nweb: web[01-20]\n  db : db1 db2,db3 \n",
            "f",
        )
        .expect("parse");
        assert_eq!(g.get("web"), Some("web[01-20]"));
        assert_eq!(g.get("db"), Some("db1 db2,db3"));
        assert_eq!(g.get("nope"), None);
        assert_eq!(g.names().collect::<Vec<_>>(), ["db", "web"]);
    }

    #[test]
    fn bad_lines_name_their_line() {
        for (text, line, says) in [
            ("web web1\n", 1, "expected 'NAME: PATTERN...'"),
            ("a: x\n\nb c: y\n", 3, "not a group name"),
            ("a: x\na: y\n", 2, "defined twice"),
        ] {
            let e = Groups::parse(text, "hosts").expect_err(text);
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("hosts, line {line}: ")),
                "{shown}"
            );
            assert!(shown.contains(says), "{shown}");
        }
    }

    #[test]
    fn a_missing_file_is_no_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = Groups::read(&dir.path().join("hosts")).expect("read");
        assert_eq!(g.names().count(), 0);
        std::fs::write(dir.path().join("hosts"), "x: a\n").expect("write");
        assert_eq!(
            Groups::read(&dir.path().join("hosts"))
                .expect("read")
                .get("x"),
            Some("a")
        );
    }
}
