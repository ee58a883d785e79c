//! Folding a set of hosts back into a pattern, for showing it:
//! `web01 web02 web03 web05` reads `web[01-03,05]`.

use std::collections::{BTreeMap, HashSet};

/// Digit runs longer than this stay text: they would not fit a `u64`.
const MAX_DIGITS: usize = 18;

/// A host taken apart: text around its numbers (`lits` has one more entry
/// than `nums`).
struct Parts<'a> {
    host: &'a str,
    lits: Vec<&'a str>,
    nums: Vec<&'a str>,
}

impl<'a> Parts<'a> {
    fn of(host: &'a str) -> Parts<'a> {
        let mut lits = Vec::new();
        let mut nums = Vec::new();
        // A host with brackets or commas (an IPv6 address) is not folded.
        if host.contains(['[', ']', ',']) {
            return Parts {
                host,
                lits: vec![host],
                nums,
            };
        }
        let b = host.as_bytes();
        let mut lit_start = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i - start <= MAX_DIGITS {
                    lits.push(&host[lit_start..start]);
                    nums.push(&host[start..i]);
                    lit_start = i;
                }
            } else {
                i += 1;
            }
        }
        lits.push(&host[lit_start..]);
        Parts { host, lits, nums }
    }
}

/// A sort key that orders numbers by value: `web2` before `web10`.
type Natural = Vec<(String, u64, usize)>;

fn natural(host: &str) -> Natural {
    let p = Parts::of(host);
    p.lits
        .iter()
        .enumerate()
        .map(|(i, l)| match p.nums.get(i) {
            Some(n) => (l.to_string(), n.parse().unwrap_or(u64::MAX), n.len()),
            None => (l.to_string(), 0, 0),
        })
        .collect()
}

/// The hosts as one pattern that [`expand`](crate::expand) reads back into
/// the same set: hosts that differ in one number share a bracket, ranges
/// where the numbers follow each other (`web[01-03,05]`), zero padding
/// kept. Where hosts differ in several numbers, the last one that differs
/// is folded. Patterns are sorted by their first host, numbers by value;
/// duplicates count once.
pub fn fold<S: AsRef<str>>(hosts: &[S]) -> String {
    let mut seen = HashSet::new();
    // Hosts of one shape (the same text around the same count of numbers).
    let mut shapes: BTreeMap<Vec<&str>, Vec<Parts<'_>>> = BTreeMap::new();
    for h in hosts {
        let h = h.as_ref();
        if seen.insert(h) {
            let p = Parts::of(h);
            shapes.entry(p.lits.clone()).or_default().push(p);
        }
    }
    let mut out: Vec<(Natural, String)> = Vec::new();
    for (lits, group) in shapes {
        let varying = (0..lits.len() - 1)
            .rev()
            .find(|&i| group.iter().any(|p| p.nums[i] != group[0].nums[i]));
        let Some(at) = varying else {
            out.extend(group.iter().map(|p| (natural(p.host), p.host.to_string())));
            continue;
        };
        // Hosts equal but for the number at `at` share a bracket.
        let mut rows: BTreeMap<Vec<(u64, &str)>, Vec<&str>> = BTreeMap::new();
        for p in &group {
            let key = p
                .nums
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != at)
                .map(|(_, n)| (n.parse().unwrap_or(u64::MAX), *n))
                .collect();
            rows.entry(key).or_default().push(p.nums[at]);
        }
        for (key, values) in rows {
            let mut others = key.iter().map(|&(_, n)| n);
            let mut text = String::new();
            let mut first = String::new();
            for (i, lit) in lits.iter().enumerate() {
                text.push_str(lit);
                first.push_str(lit);
                if i == at {
                    let set = range_set(&values);
                    first.push_str(&set.first);
                    text.push_str(&set.text);
                } else if i + 1 < lits.len() {
                    let n = others.next().unwrap_or_default();
                    text.push_str(n);
                    first.push_str(n);
                }
            }
            out.push((natural(&first), text));
        }
    }
    out.sort();
    let texts: Vec<String> = out.into_iter().map(|(_, t)| t).collect();
    texts.join(",")
}

/// A folded set of numbers: `01-03,05`, in brackets unless it is one.
struct RangeSet {
    text: String,
    first: String,
}

fn range_set(values: &[&str]) -> RangeSet {
    let padded = |s: &str| s.len() > 1 && s.starts_with('0');
    let widths: HashSet<usize> = values
        .iter()
        .filter(|s| padded(s))
        .map(|s| s.len())
        .collect();
    // (value, width): a number as long as a padded one of the set reads as
    // padded too (`08-10`), which prints it the same.
    let mut nums: Vec<(u64, usize)> = values
        .iter()
        .map(|s| {
            let w = if padded(s) || widths.contains(&s.len()) {
                s.len()
            } else {
                0
            };
            (s.parse().unwrap_or(u64::MAX), w)
        })
        .collect();
    // By padding, then value: runs never mix widths.
    nums.sort_by_key(|&(v, w)| (w, v));
    nums.dedup();
    let show = |(v, w): (u64, usize)| format!("{v:0w$}");
    let first = nums.first().map(|&n| show(n)).unwrap_or_default();
    if nums.len() == 1 {
        return RangeSet {
            text: first.clone(),
            first,
        };
    }
    let mut runs: Vec<((u64, usize), (u64, usize))> = Vec::new();
    for n in nums {
        match runs.last_mut() {
            Some((_, end)) if end.1 == n.1 && end.0.checked_add(1) == Some(n.0) => *end = n,
            _ => runs.push((n, n)),
        }
    }
    let parts: Vec<String> = runs
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                show(a)
            } else {
                format!("{}-{}", show(a), show(b))
            }
        })
        .collect();
    RangeSet {
        text: format!("[{}]", parts.join(",")),
        first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{expand, Groups};

    fn round_trip(hosts: &[&str]) -> String {
        let folded = fold(hosts);
        let mut back = expand(&[folded.as_str()], &[] as &[&str], &Groups::default())
            .unwrap_or_else(|e| panic!("{folded}: {e}"));
        let mut want: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        back.sort();
        want.sort();
        want.dedup();
        assert_eq!(back, want, "{folded}");
        folded
    }

    #[test]
    fn ranges_with_padding() {
        assert_eq!(
            round_trip(&["web01", "web02", "web03", "web04", "web05", "web07"]),
            "web[01-05,07]"
        );
        assert_eq!(round_trip(&["web9", "web10", "web11"]), "web[9-11]");
        assert_eq!(round_trip(&["n08", "n09", "n10"]), "n[08-10]");
        assert_eq!(round_trip(&["n1", "n01", "n2"]), "n[1-2,01]");
        assert_eq!(round_trip(&["n01", "n100"]), "n[100,01]");
    }

    #[test]
    fn one_host_has_no_brackets_and_order_is_natural() {
        assert_eq!(round_trip(&["web07"]), "web07");
        assert_eq!(round_trip(&["web10", "web2", "db1"]), "db1,web[2,10]");
        assert_eq!(round_trip(&["b", "a", "b"]), "a,b");
        assert_eq!(fold::<&str>(&[]), "");
    }

    #[test]
    fn the_last_number_that_differs_is_folded() {
        assert_eq!(
            round_trip(&["127.0.0.1:2222", "127.0.0.2:2222", "127.0.0.3:2222"]),
            "127.0.0.[1-3]:2222"
        );
        assert_eq!(
            round_trip(&["r1n1", "r1n2", "r2n1", "r2n3"]),
            "r1n[1-2],r2n[1,3]"
        );
        assert_eq!(
            round_trip(&["deploy@web1:22", "deploy@web2:22", "web3"]),
            "deploy@web[1-2]:22,web3"
        );
    }

    #[test]
    fn what_cannot_fold_stays_as_written() {
        assert_eq!(round_trip(&["[::1]:22", "[::2]:22"]), "[::1]:22,[::2]:22");
        let long = "n1234567890123456789012";
        assert_eq!(round_trip(&[long]), long);
    }

    #[test]
    fn expanded_patterns_fold_back() {
        for p in ["web[01-20,30]", "a[1-3,7],db1", "x[001-100/3]"] {
            let hosts = expand(&[p], &[] as &[&str], &Groups::default()).expect(p);
            let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
            round_trip(&refs);
        }
        assert_eq!(
            fold(&expand(&["web[01-20,30]"], &[] as &[&str], &Groups::default()).expect("x")),
            "web[01-20,30]"
        );
    }
}
