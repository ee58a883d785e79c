//! SQLite's errors, said once.
//!
//! rusqlite renders a failure as its message (`file is not a database`) and
//! then, as that error's source, the same failure by its code (`Error code
//! 26: File opened that is not a database file`): a chain rendered at the
//! edge would say it twice. [`Sql`] keeps the message and drops the echo.

use std::error::Error;
use std::fmt;

/// A rusqlite error whose failure is said once.
#[derive(Debug)]
pub(crate) struct Sql(pub(crate) rusqlite::Error);

impl fmt::Display for Sql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for Sql {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.0 {
            // The message says what the code's own text would say again.
            rusqlite::Error::SqliteFailure(_, Some(_)) => None,
            other => other.source(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_with_a_message_is_said_once() {
        let dir = std::env::temp_dir().join(format!("jobs-sql-{}", std::process::id()));
        std::fs::write(&dir, [0x5a; 4096]).expect("write");
        let e = rusqlite::Connection::open(&dir)
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .expect_err("not a database");
        let _ = std::fs::remove_file(&dir);
        let e = Sql(e);
        assert_eq!(e.to_string(), "file is not a database");
        assert!(e.source().is_none());
    }
}
