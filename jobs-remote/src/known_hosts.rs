//! Reading known_hosts lines as OpenSSH writes them: an optional marker
//! (`@revoked`, `@cert-authority`), the host patterns, the key type and the
//! key. Plain lines are matched by libssh2; the marked lines, which libssh2
//! does not understand, are judged here.

/// What a line's marker says about its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    /// No marker: the key is trusted for the hosts named.
    None,
    /// `@revoked`: the key must never be accepted.
    Revoked,
    /// `@cert-authority`: the key signs host certificates (not supported).
    CertAuthority,
    /// Any other `@word`: the line is ignored, as OpenSSH ignores it.
    Unknown,
}

/// One line of a known_hosts file that holds a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    /// The line's number, from 1.
    pub(crate) line: usize,
    /// Its marker.
    pub(crate) marker: Marker,
    /// The host patterns, comma-separated (or one hashed `|1|...` name).
    pub(crate) hosts: &'a str,
    /// The key type (`ssh-ed25519`, ...).
    pub(crate) key_type: &'a str,
    /// The key, base64.
    pub(crate) key: &'a str,
    /// The line without its marker, for libssh2.
    pub(crate) unmarked: &'a str,
}

impl Entry<'_> {
    /// Whether this line's key is `key` (the raw key blob).
    pub(crate) fn is_key(&self, key: &[u8]) -> bool {
        crate::base64::decode(self.key).is_some_and(|k| k == key)
    }

    /// Whether the line's host patterns name `field` (`host`, or
    /// `[host]:port` off port 22). Hashed names never match here.
    pub(crate) fn names(&self, field: &str) -> bool {
        let mut matched = false;
        for pattern in self.hosts.split(',') {
            match pattern.strip_prefix('!') {
                Some(negated) if wildcard_match(negated, field) => return false,
                Some(_) => {}
                None => matched |= wildcard_match(pattern, field),
            }
        }
        matched
    }
}

/// The lines of `text` that hold a key, with their markers; comments,
/// blank and malformed lines are left out.
pub(crate) fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (marker, unmarked) = match line.strip_prefix('@') {
            Some(rest) => {
                let (word, rest) = rest.split_once(char::is_whitespace)?;
                let marker = match word {
                    "revoked" => Marker::Revoked,
                    "cert-authority" => Marker::CertAuthority,
                    _ => Marker::Unknown,
                };
                (marker, rest.trim_start())
            }
            None => (Marker::None, line),
        };
        let mut fields = unmarked.split_whitespace();
        let hosts = fields.next()?;
        let key_type = fields.next()?;
        let key = fields.next()?;
        Some(Entry {
            line: i + 1,
            marker,
            hosts,
            key_type,
            key,
            unmarked,
        })
    })
}

/// OpenSSH's pattern match: `*` any run of characters, `?` any one,
/// letters compared without case.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGGk";

    #[test]
    fn markers_and_line_numbers() {
        let text = format!(
            "# comment\n\nweb ssh-ed25519 {KEY} me@host\n@revoked * ssh-ed25519 {KEY}\n\
             @cert-authority *.example.com ssh-rsa {KEY}\n@future web ssh-ed25519 {KEY}\n"
        );
        let got: Vec<(usize, Marker, &str)> = entries(&text)
            .map(|e| (e.line, e.marker, e.hosts))
            .collect();
        assert_eq!(
            got,
            [
                (3, Marker::None, "web"),
                (4, Marker::Revoked, "*"),
                (5, Marker::CertAuthority, "*.example.com"),
                (6, Marker::Unknown, "web"),
            ]
        );
        let revoked = entries(&text).nth(1).expect("revoked");
        assert_eq!(revoked.unmarked, format!("* ssh-ed25519 {KEY}"));
        assert_eq!((revoked.key_type, revoked.key), ("ssh-ed25519", KEY));
    }

    #[test]
    fn malformed_lines_are_left_out() {
        let text = format!("web\nweb ssh-ed25519\n@revoked\n@revoked *\nok ssh-ed25519 {KEY}\n");
        let got: Vec<usize> = entries(&text).map(|e| e.line).collect();
        assert_eq!(got, [5]);
    }

    #[test]
    fn tabs_separate_fields_and_marker() {
        let text = format!("@revoked\t*\tssh-ed25519\t{KEY}\n");
        let e = entries(&text).next().expect("entry");
        assert_eq!((e.marker, e.hosts, e.key), (Marker::Revoked, "*", KEY));
    }

    #[test]
    fn keys_compare_as_bytes() {
        let text = "h ssh-ed25519 Zm9vYmFy\n";
        let e = entries(text).next().expect("entry");
        assert!(e.is_key(b"foobar"));
        assert!(!e.is_key(b"foobaz"));
        let bad = "h ssh-ed25519 not*base64\n";
        assert!(!entries(bad).next().expect("entry").is_key(b""));
    }

    #[test]
    fn host_patterns_follow_openssh() {
        let e = |hosts: &'static str| Entry {
            line: 1,
            marker: Marker::None,
            hosts,
            key_type: "ssh-ed25519",
            key: KEY,
            unmarked: "",
        };
        assert!(e("*").names("web"));
        assert!(e("*").names("[127.0.0.1]:2222"));
        assert!(e("web,db").names("db"));
        assert!(e("*.example.com").names("WWW.Example.com"));
        assert!(!e("*.example.com").names("example.com"));
        assert!(e("web?").names("web1"));
        assert!(!e("web?").names("web12"));
        assert!(e("[127.0.0.1]:*").names("[127.0.0.1]:2222"));
        assert!(!e("[127.0.0.1]:*").names("127.0.0.1"));
        assert!(!e("*,!secret").names("secret"));
        assert!(e("*,!secret").names("public"));
        assert!(!e("!secret").names("public"));
        assert!(!e("|1|c2FsdA==|aGFzaA==").names("web"));
    }
}
