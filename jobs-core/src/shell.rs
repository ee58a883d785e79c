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
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
