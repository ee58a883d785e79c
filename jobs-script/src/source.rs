//! Reading a script's text from a file or a stream, never more than
//! [`MAX_SCRIPT_SIZE`] bytes of it: `--script /dev/zero` must fail, not
//! fill the memory.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest script text, in bytes, read from a file or a stream: 16 MiB,
/// the default [`max_string_size`](crate::Limits::max_string_size), far
/// beyond any script written by hand.
pub const MAX_SCRIPT_SIZE: usize = 16 << 20;

/// Why a script's text could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptFileError {
    /// The file could not be opened or read.
    #[error("cannot read the script {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is longer than [`MAX_SCRIPT_SIZE`].
    #[error("the script {path} is longer than {} MiB", MAX_SCRIPT_SIZE >> 20)]
    TooLong {
        /// The file.
        path: PathBuf,
    },
    /// The text ended before its announced length.
    #[error("the script {path} was cut short: {read} of {expected} bytes arrived")]
    CutShort {
        /// The file or stream.
        path: PathBuf,
        /// The bytes read.
        read: usize,
        /// The bytes announced.
        expected: usize,
    },
    /// The text is not UTF-8.
    #[error("the script {path} is not UTF-8 text")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

/// Reads the script in `path` (any readable file: a FIFO, `/dev/stdin`),
/// refusing one longer than [`MAX_SCRIPT_SIZE`] after reading one byte
/// more than that at most.
pub fn read_script_file(path: &Path) -> Result<String, ScriptFileError> {
    let read = |source| ScriptFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(MAX_SCRIPT_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() > MAX_SCRIPT_SIZE {
        return Err(ScriptFileError::TooLong {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|_| ScriptFileError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Reads exactly `len` bytes of script text from `reader` (named `name` in
/// errors): a worker's stdin, fed by its process job.
pub(crate) fn read_exactly(
    mut reader: impl Read,
    len: usize,
    name: &str,
) -> Result<String, ScriptFileError> {
    let path = PathBuf::from(name);
    if len > MAX_SCRIPT_SIZE {
        return Err(ScriptFileError::TooLong { path });
    }
    let mut bytes = Vec::with_capacity(len);
    (&mut reader)
        .take(len as u64)
        .read_to_end(&mut bytes)
        .map_err(|source| ScriptFileError::Read {
            path: path.clone(),
            source,
        })?;
    if bytes.len() < len {
        return Err(ScriptFileError::CutShort {
            path,
            read: bytes.len(),
            expected: len,
        });
    }
    String::from_utf8(bytes).map_err(|_| ScriptFileError::NotUtf8 { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_at_the_cap_reads_one_beyond_is_refused() {
        let dir = std::env::temp_dir().join(format!("jobs-script-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let at = dir.join("at.rhai");
        std::fs::write(&at, vec![b' '; MAX_SCRIPT_SIZE]).expect("write");
        let over = dir.join("over.rhai");
        std::fs::write(&over, vec![b' '; MAX_SCRIPT_SIZE + 1]).expect("write");
        let bad = dir.join("bad.rhai");
        std::fs::write(&bad, b"emit(\xff)").expect("write");
        let got = (
            read_script_file(&at).map(|s| s.len()),
            read_script_file(&over),
            read_script_file(&bad),
            read_script_file(&dir.join("absent.rhai")),
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got.0.expect("at the cap"), MAX_SCRIPT_SIZE);
        assert!(matches!(got.1, Err(ScriptFileError::TooLong { .. })));
        assert!(matches!(got.2, Err(ScriptFileError::NotUtf8 { .. })));
        let absent = got.3.expect_err("absent");
        assert!(matches!(absent, ScriptFileError::Read { .. }));
        // The cause is the source, not part of the message.
        assert!(absent.to_string().ends_with("absent.rhai"), "{absent}");
    }

    #[test]
    fn endless_input_is_refused() {
        let err = read_script_file(Path::new("/dev/zero")).expect_err("endless");
        assert_eq!(
            err.to_string(),
            "the script /dev/zero is longer than 16 MiB"
        );
    }

    #[test]
    fn exactly_the_announced_length_is_read() {
        let text = b"emit(1); trailing";
        assert_eq!(
            read_exactly(&text[..], 8, "stdin").expect("read"),
            "emit(1);"
        );
        let err = read_exactly(&text[..], 100, "stdin").expect_err("short");
        assert_eq!(
            err.to_string(),
            "the script stdin was cut short: 17 of 100 bytes arrived"
        );
        assert!(matches!(
            read_exactly(&text[..], MAX_SCRIPT_SIZE + 1, "stdin"),
            Err(ScriptFileError::TooLong { .. })
        ));
    }
}
