//! Quoting for a POSIX shell: the one rule every crate that writes a
//! command line for `/bin/sh` uses.

/// Quotes a word so that a POSIX shell reads it back as exactly this one
/// word. Plain words (letters, digits and `-_./=:,+@%`) stay as they are;
/// anything else goes in single quotes, each `'` written as `'\''`.
///
/// ```
/// use jobs_core::shell_quote;
///
/// assert_eq!(shell_quote("/tmp/out.txt"), "/tmp/out.txt");
/// assert_eq!(shell_quote("a b"), "'a b'");
/// assert_eq!(shell_quote("it's"), r"'it'\''s'");
/// assert_eq!(shell_quote(""), "''");
/// ```
pub fn shell_quote(word: &str) -> String {
    // Quoting adds ASCII only: UTF-8 in, UTF-8 out.
    String::from_utf8(shell_quote_bytes(word.as_bytes()))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`shell_quote`] for a word that need not be UTF-8: the same rule, byte
/// for byte.
///
/// ```
/// use jobs_core::shell_quote_bytes;
/// assert_eq!(shell_quote_bytes(b"a\xffb"), b"'a\xffb'");
/// ```
pub fn shell_quote_bytes(word: &[u8]) -> Vec<u8> {
    let plain = !word.is_empty()
        && word
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(b));
    if plain {
        return word.to_vec();
    }
    let mut out = Vec::with_capacity(word.len() + 2);
    out.push(b'\'');
    for &b in word {
        if b == b'\'' {
            out.extend_from_slice(br"'\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}
