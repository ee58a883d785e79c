//! Host patterns, as pdsh and ClusterShell users write them, and their
//! other half: a set of hosts folded back into a pattern.
//!
//! A pattern names hosts: `web[01-20,30]` is `web01` … `web20` and `web30`
//! (zero padding kept), `r[1-2]n[1-3]` is six hosts (the leftmost bracket
//! varies slowest), `web[1-3],db1` is four (a comma outside brackets
//! separates patterns, one inside separates ranges), and `@NAME` is a group
//! of the groups file ([`Groups`], lines `NAME: PATTERN...`). Text outside
//! brackets is kept as written, so `deploy@web[1-2]:2222` and
//! `127.0.0.[1-2]:22` work; a bracket holding a `:` is an IPv6 address
//! (`[::1]:22`), not a range. [`expand`] reads patterns into hosts, in the
//! order written, each once, minus the exclusions; a malformed pattern is a
//! [`PatternError`] naming it.
//!
//! [`fold`] is the inverse, for showing a set: `web01 web02 web03 web05`
//! reads `web[01-03,05]`. Hosts that differ in one number fold together;
//! the number folded is the last one that differs, so a port stays
//! outside (`127.0.0.[1-2]:22`).
//!
//! ```
//! use jobs_hostlist::{expand, fold, Groups};
//!
//! let groups = Groups::parse("db: db[1-2]\n", "hosts")?;
//! let hosts = expand(&["web[01-03],@db"], &["web02"], &groups)?;
//! assert_eq!(hosts, ["web01", "web03", "db1", "db2"]);
//! assert_eq!(fold(&hosts), "db[1-2],web[01,03]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod expand;
mod fold;
mod groups;

pub use expand::{expand, PatternError, MAX_HOSTS};
pub use fold::fold;
pub use groups::{Groups, GroupsError};
