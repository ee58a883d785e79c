//! Reading host patterns into hosts: ranges, groups, exclusions.

use std::collections::HashSet;

use crate::groups::{valid_name, Groups};

/// The most hosts one call of [`expand`] gives: a typo such as
/// `web[1-10000000]` is refused rather than filling memory.
pub const MAX_HOSTS: usize = 100_000;

/// A pattern that cannot be read. Each names the pattern (or group) at
/// fault; a pattern inside a group is reported inside [`PatternError::InGroup`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern's syntax is wrong: a reversed range, an unclosed
    /// bracket, a bad number.
    #[error("malformed host pattern '{pattern}': {why}")]
    Malformed {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        why: String,
    },
    /// `@NAME` names no group of the groups file.
    #[error("unknown host group '@{name}' (groups are read from {origin})")]
    UnknownGroup {
        /// The group's name.
        name: String,
        /// Where groups are read from.
        origin: String,
    },
    /// A group includes itself, directly or through others.
    #[error("host group '@{name}' includes itself")]
    GroupCycle {
        /// The group's name.
        name: String,
    },
    /// A pattern of a group is wrong (the cause says how).
    #[error("in host group '@{name}' of {origin}")]
    InGroup {
        /// The group's name.
        name: String,
        /// Where groups are read from.
        origin: String,
        /// What is wrong.
        #[source]
        source: Box<PatternError>,
    },
    /// The patterns name more than [`MAX_HOSTS`] hosts.
    #[error("host pattern '{pattern}' names more than {MAX_HOSTS} hosts")]
    TooMany {
        /// The pattern that went past the limit.
        pattern: String,
    },
    /// The patterns name no host (all excluded, or empty groups).
    #[error("the host patterns name no host{}", if *.excluded { " once the exclusions are taken out" } else { "" })]
    NoHosts {
        /// Whether exclusions took every host out.
        excluded: bool,
    },
}

/// The hosts `patterns` name, in the order written, each once (the first
/// time it appears), less those `exclude` names. Each argument may hold
/// several patterns separated by commas or spaces; `@NAME` reads a group of
/// `groups`. Exclusions are patterns too; one also takes out a host written
/// with a user (`--exclude web2` takes out `deploy@web2`).
pub fn expand<P: AsRef<str>, E: AsRef<str>>(
    patterns: &[P],
    exclude: &[E],
    groups: &Groups,
) -> Result<Vec<String>, PatternError> {
    let mut hosts = Expansion::new(groups);
    for p in patterns {
        hosts.argument(p.as_ref())?;
    }
    let mut out = hosts.hosts;
    if out.is_empty() {
        return Err(PatternError::NoHosts { excluded: false });
    }
    if !exclude.is_empty() {
        let mut gone = Expansion::new(groups);
        for e in exclude {
            gone.argument(e.as_ref())?;
        }
        out.retain(|h| {
            let bare = h.rsplit_once('@').map_or(h.as_str(), |(_, host)| host);
            !gone.seen.contains(h) && !gone.seen.contains(bare)
        });
        if out.is_empty() {
            return Err(PatternError::NoHosts { excluded: true });
        }
    }
    Ok(out)
}

/// Hosts gathered so far, and the groups being read (to catch cycles).
struct Expansion<'g> {
    groups: &'g Groups,
    hosts: Vec<String>,
    seen: HashSet<String>,
    reading: Vec<String>,
}

impl<'g> Expansion<'g> {
    fn new(groups: &'g Groups) -> Self {
        Expansion {
            groups,
            hosts: Vec::new(),
            seen: HashSet::new(),
            reading: Vec::new(),
        }
    }

    /// One argument: patterns separated by commas (outside brackets) or
    /// white space.
    fn argument(&mut self, arg: &str) -> Result<(), PatternError> {
        for token in split(arg)? {
            match token.strip_prefix('@') {
                Some(name) => self.group(token, name)?,
                None => self.pattern(token)?,
            }
        }
        Ok(())
    }

    fn group(&mut self, token: &str, name: &str) -> Result<(), PatternError> {
        if !valid_name(name) {
            return Err(malformed(
                token,
                "a group name is letters, digits, '_', '-' and '.'",
            ));
        }
        let origin = || self.groups.origin().to_string();
        let Some(text) = self.groups.get(name) else {
            return Err(PatternError::UnknownGroup {
                name: name.to_string(),
                origin: origin(),
            });
        };
        if self.reading.iter().any(|r| r == name) {
            return Err(PatternError::GroupCycle {
                name: name.to_string(),
            });
        }
        self.reading.push(name.to_string());
        let r = self.argument(text);
        self.reading.pop();
        r.map_err(|e| match e {
            // Said once, by the group where it starts.
            e @ (PatternError::GroupCycle { .. } | PatternError::InGroup { .. }) => e,
            e => PatternError::InGroup {
                name: name.to_string(),
                origin: origin(),
                source: Box::new(e),
            },
        })
    }

    /// A pattern without `@`: literal text and bracketed ranges.
    fn pattern(&mut self, token: &str) -> Result<(), PatternError> {
        let segments = segments(token)?;
        let count = segments.iter().try_fold(1usize, |n, s| match s {
            Segment::Literal(_) => Some(n),
            Segment::Range(v) => n.checked_mul(v.len()),
        });
        if count.is_none_or(|n| n + self.hosts.len() > MAX_HOSTS) {
            return Err(PatternError::TooMany {
                pattern: token.to_string(),
            });
        }
        let mut names = vec![String::new()];
        for s in &segments {
            names = match s {
                Segment::Literal(l) => {
                    names.iter_mut().for_each(|n| n.push_str(l));
                    names
                }
                Segment::Range(values) => names
                    .iter()
                    .flat_map(|n| values.iter().map(move |v| format!("{n}{v}")))
                    .collect(),
            };
        }
        for n in names {
            if self.seen.insert(n.clone()) {
                self.hosts.push(n);
            }
        }
        Ok(())
    }
}

fn malformed(pattern: &str, why: impl Into<String>) -> PatternError {
    PatternError::Malformed {
        pattern: pattern.to_string(),
        why: why.into(),
    }
}

/// Splits an argument at commas and white space outside brackets; checks
/// the brackets pair up, unnested.
fn split(arg: &str) -> Result<Vec<&str>, PatternError> {
    let mut out = Vec::new();
    for piece in top_level(arg, |c| c == ',')? {
        let words = top_level(piece, char::is_whitespace)?;
        let before = out.len();
        out.extend(words.into_iter().filter(|w| !w.is_empty()));
        if out.len() == before && arg.contains(',') {
            return Err(malformed(arg, "an empty host between commas"));
        }
    }
    if out.is_empty() {
        return Err(malformed(arg, "no host"));
    }
    Ok(out)
}

/// `s` cut at the characters `cut` accepts outside brackets.
fn top_level(s: &str, cut: impl Fn(char) -> bool) -> Result<Vec<&str>, PatternError> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' if inside => return Err(malformed(s, "'[' inside brackets")),
            '[' => inside = true,
            ']' if !inside => return Err(malformed(s, "']' without '['")),
            ']' => inside = false,
            c if !inside && cut(c) => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if inside {
        return Err(malformed(s, "missing ']'"));
    }
    out.push(&s[start..]);
    Ok(out)
}

/// A part of a pattern: text as written, or the values of a range.
enum Segment {
    Literal(String),
    Range(Vec<String>),
}

/// Reads a pattern (brackets already checked by [`split`]).
fn segments(token: &str) -> Result<Vec<Segment>, PatternError> {
    let mut out = Vec::new();
    let mut rest = token;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|c| open + c)
            .ok_or_else(|| malformed(token, "missing ']'"))?;
        let inner = &rest[open + 1..close];
        if inner.contains(':') {
            // An IPv6 address, `[::1]:22`: text.
            out.push(Segment::Literal(rest[..=close].to_string()));
        } else {
            out.push(Segment::Literal(rest[..open].to_string()));
            out.push(Segment::Range(range_set(token, inner)?));
        }
        rest = &rest[close + 1..];
    }
    out.push(Segment::Literal(rest.to_string()));
    Ok(out)
}

/// The values of `1-3,7,09-11,1-9/2`: ranges and numbers separated by
/// commas; a number written with leading zeros sets the width of its range.
fn range_set(token: &str, inner: &str) -> Result<Vec<String>, PatternError> {
    if inner.is_empty() {
        return Err(malformed(token, "empty brackets"));
    }
    let mut values = Vec::new();
    for element in inner.split(',') {
        let bad = |why: String| malformed(token, why);
        if element.is_empty() {
            return Err(bad("an empty range between commas".into()));
        }
        let (span, step) = match element.split_once('/') {
            Some((span, step)) => (span, Some(step)),
            None => (element, None),
        };
        let (lo, hi) = span.split_once('-').unwrap_or((span, span));
        let number = |s: &str| -> Result<u64, PatternError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("'{element}' is not a number or a range N-M")));
            }
            s.parse()
                .map_err(|_| bad(format!("{s} is too large a number")))
        };
        let (first, last) = (number(lo)?, number(hi)?);
        let padded = |s: &str| s.len() > 1 && s.starts_with('0');
        let width = if padded(lo) { lo.len() } else { 0 };
        if (width > 0 && hi.len() > width) || (width == 0 && padded(hi)) {
            return Err(bad(format!(
                "'{span}': the two ends are padded differently"
            )));
        }
        if first > last {
            return Err(bad(format!("reversed range {span} (write it {hi}-{lo})")));
        }
        let step = match step {
            None => 1,
            Some(s) => match s.parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad(format!("'/{s}' is not a step of 1 or more"))),
            },
        };
        if (last - first) / step >= MAX_HOSTS as u64 {
            return Err(PatternError::TooMany {
                pattern: token.to_string(),
            });
        }
        let mut v = first;
        loop {
            values.push(format!("{v:0width$}"));
            match v.checked_add(step) {
                Some(n) if n <= last => v = n,
                _ => break,
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(patterns: &[&str]) -> Vec<String> {
        expand(patterns, &[] as &[&str], &Groups::default()).expect("expands")
    }

    fn err(pattern: &str) -> String {
        expand(&[pattern], &[] as &[&str], &Groups::default())
            .expect_err(pattern)
            .to_string()
    }

    #[test]
    fn zero_padding_is_kept() {
        assert_eq!(x(&["web[01-03]"]), ["web01", "web02", "web03"]);
        assert_eq!(x(&["n[008-011]"]), ["n008", "n009", "n010", "n011"]);
        assert_eq!(x(&["n[9-11]"]), ["n9", "n10", "n11"]);
        assert_eq!(x(&["n[0-1]"]), ["n0", "n1"]);
        assert_eq!(x(&["n[00-01]"]), ["n00", "n01"]);
        // ClusterShell: a padded start sets the width of the whole range.
        assert_eq!(x(&["n[001-10]"]).last().map(String::as_str), Some("n010"));
    }

    #[test]
    fn several_ranges_and_hosts_per_argument() {
        assert_eq!(
            x(&["web[1-3,7],db1"]),
            ["web1", "web2", "web3", "web7", "db1"]
        );
        assert_eq!(x(&["a[1,3-4]b"]), ["a1b", "a3b", "a4b"]);
        assert_eq!(x(&["a1 a2, a3"]), ["a1", "a2", "a3"]);
        assert_eq!(x(&["a[1-2]", "b"]), ["a1", "a2", "b"]);
        assert_eq!(x(&["n[1-9/4]"]), ["n1", "n5", "n9"]);
    }

    #[test]
    fn several_bracket_groups_vary_rightmost_fastest() {
        assert_eq!(
            x(&["r[1-2]n[1-3]"]),
            ["r1n1", "r1n2", "r1n3", "r2n1", "r2n2", "r2n3"]
        );
        assert_eq!(x(&["r[1,2]n[01,2]"]), ["r1n01", "r1n2", "r2n01", "r2n2"]);
    }

    #[test]
    fn nested_commas_belong_to_their_brackets() {
        assert_eq!(x(&["a[1,2],b[3,4],c"]), ["a1", "a2", "b3", "b4", "c"]);
    }

    #[test]
    fn duplicates_are_removed_in_order() {
        assert_eq!(x(&["b,a[1-2],b,a1", "a[2-3]"]), ["b", "a1", "a2", "a3"]);
    }

    #[test]
    fn users_ports_and_ipv6_stay_as_written() {
        assert_eq!(
            x(&["deploy@web[1-2]:2222"]),
            ["deploy@web1:2222", "deploy@web2:2222"]
        );
        assert_eq!(x(&["127.0.0.[1-2]:22"]), ["127.0.0.1:22", "127.0.0.2:22"]);
        assert_eq!(x(&["[::1]:22,u@[fe80::1]"]), ["[::1]:22", "u@[fe80::1]"]);
    }

    #[test]
    fn a_reversed_range_is_refused_with_a_message() {
        let e = err("web[45-33]");
        assert_eq!(
            e,
            "malformed host pattern 'web[45-33]': reversed range 45-33 (write it 33-45)"
        );
    }

    #[test]
    fn malformed_patterns_are_named() {
        for (p, says) in [
            ("web[1-", "missing ']'"),
            ("web[5-1]", "reversed range 5-1"),
            ("web]", "']' without '['"),
            ("web[[1]]", "'[' inside brackets"),
            ("web[]", "empty brackets"),
            ("web[1,,2]", "an empty range"),
            ("web[a-b]", "not a number"),
            ("web[1-2-3]", "not a number"),
            ("web[01-100]", "padded differently"),
            ("web[1-010]", "padded differently"),
            ("web[1-9/0]", "not a step"),
            ("a,,b", "an empty host between commas"),
            ("a,", "an empty host between commas"),
            ("", "no host"),
            ("@", "a group name"),
            ("n[99999999999999999999]", "too large"),
        ] {
            let e = err(p);
            assert!(
                e.starts_with(&format!("malformed host pattern '{p}': ")),
                "{p}: {e}"
            );
            assert!(e.contains(says), "{p}: {e}");
        }
    }

    #[test]
    fn too_many_hosts_are_refused() {
        assert!(err("n[1-10000000]").contains("more than 100000 hosts"));
        assert!(err("a[1-1000]b[1-1000]").contains("more than"));
        assert_eq!(x(&["n[1-100000]"]).len(), MAX_HOSTS);
    }

    #[test]
    fn groups_expand_and_nest() {
        let g = Groups::parse(
            "web: web[1-3]\ndb: db1,db2\nall: @web @db\nloop: @again\nagain: @loop\nbad: x[2-1]\n",
            "hosts",
        )
        .expect("groups");
        let e = |p: &str| expand(&[p], &[] as &[&str], &g);
        assert_eq!(
            e("@all,z").expect("all"),
            ["web1", "web2", "web3", "db1", "db2", "z"]
        );
        assert_eq!(
            e("@nope").expect_err("unknown").to_string(),
            "unknown host group '@nope' (groups are read from hosts)"
        );
        assert!(matches!(
            e("@loop").expect_err("cycle"),
            PatternError::GroupCycle { .. }
        ));
        let bad = e("@bad").expect_err("bad");
        assert_eq!(bad.to_string(), "in host group '@bad' of hosts");
        let source = std::error::Error::source(&bad).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("malformed host pattern 'x[2-1]': reversed range 2-1 (write it 1-2)")
        );
    }

    #[test]
    fn exclusions_take_hosts_out() {
        let g = Groups::parse("odd: web[1,3]\n", "hosts").expect("groups");
        assert_eq!(
            expand(&["web[1-5]"], &["@odd", "web5"], &g).expect("expand"),
            ["web2", "web4"]
        );
        assert_eq!(
            expand(&["u@web[1-2]"], &["web1"], &g).expect("expand"),
            ["u@web2"]
        );
        assert_eq!(
            expand(&["web1"], &["web1"], &g).expect_err("none left"),
            PatternError::NoHosts { excluded: true }
        );
        assert!(matches!(
            expand(&["web1"], &["web[2-1]"], &g),
            Err(PatternError::Malformed { .. })
        ));
    }
}
