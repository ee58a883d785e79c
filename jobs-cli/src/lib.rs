//! The machinery behind the `jobctl` command: the session daemon
//! (`jobctl-daemon`) and what its clients share with it.
//!
//! `jobctl` is a small client: it parses the command line, talks to the
//! session daemon of its home over a Unix socket, and writes the answers.
//! The daemon owns a `jobs_core::Session` over a durable SQLite store, with
//! every built-in executor (process, thread scripts, remote) and the
//! plugins registered. The two are separate executables so that each
//! `jobctl` command starts in a fraction of a millisecond: only the daemon
//! links SQLite, SSH, the script engine and the async runtime.
//!
//! [`protocol`] holds the versioned messages and their framing, used by
//! both sides; [`home`] the session directory's layout; [`daemon_main`]
//! runs the daemon (or a script job's worker process).
//!
//! # Example
//! ```
//! use jobs_cli::protocol::{encode, read_frame, Op, Request};
//!
//! let frame = encode(&Request::new(Op::Show { id: 3 }), b"")?;
//! let (req, blob): (Request, Vec<u8>) = read_frame(&mut frame.as_slice())?;
//! assert!(matches!(req.op, Op::Show { id: 3 }) && blob.is_empty());
//! # Ok::<(), jobs_cli::protocol::FrameError>(())
//! ```

mod daemon;
mod executors;
pub mod home;
pub mod protocol;
mod serve;
mod store;

use std::ffi::OsString;
use std::path::PathBuf;

/// The daemon executable's entry point: `jobctl-daemon --home DIR
/// [--plugin FILE]...` runs the session daemon of DIR until the session
/// ends; `jobctl-daemon __worker ...` runs a script job's worker process.
/// Returns the exit code.
pub fn daemon_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let mut args = args.into_iter().peekable();
    #[cfg(feature = "script")]
    if args.peek().is_some_and(|a| a == jobs_script::WORKER_ARG) {
        return jobs_script::worker_main(args.skip(1));
    }
    let mut home = None;
    let mut plugins = Vec::new();
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--home") => home = args.next().map(PathBuf::from),
            Some("--plugin") => plugins.extend(args.next().map(PathBuf::from)),
            _ => {
                eprintln!("jobctl-daemon: unexpected argument {a:?}; usage: jobctl-daemon --home DIR [--plugin FILE]...");
                return 2;
            }
        }
    }
    let result = home::Home::resolve(home).and_then(|h| daemon::run(h, plugins));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("jobctl-daemon: {e:#}");
            1
        }
    }
}
