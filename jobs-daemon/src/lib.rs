//! The jobctl session daemon, `jobctl-daemon`: one per session home,
//! started by the first `jobctl` command that needs it. It owns a
//! `jobs_core::Session` over a durable store ([`jobs_store_sqlite`]), with
//! every built-in executor registered (process jobs from jobs-process,
//! thread and script jobs from jobs-script, remote jobs from jobs-remote)
//! and the plugins of the home loaded; it serves the `jobctl` command over
//! the home's Unix socket, speaking [`jobs_protocol`]. It alone depends on
//! the executors and the store, so the command stays small.
//!
//! The same executable is the worker process of script process jobs
//! (`jobctl-daemon __worker ...`).
//!
//! Modules: `daemon` is the process's life (lock, runtime, socket,
//! signals); `limits` what each client may take (idle time, connections,
//! descriptors); `serve` one connection, `wire` its framing, `handle` the
//! requests, `receive` the paged, acknowledged receive; `events` the state changes; `hooks`
//! the programs run when a job finishes; `executors` the
//! registry and the translation of a `start` request into a job spec;
//! `restart` starts jobs (keeping each one's request) and starts them again.
//!
//! # Example
//! ```no_run
//! // What the `jobctl-daemon` executable does: serve the session of a home
//! // until `jobctl daemon stop` or SIGTERM.
//! let code = jobs_daemon::daemon_main(["--home".into(), "/tmp/jobctl-home".into()]);
//! std::process::exit(code);
//! ```

mod batch;
mod connect;
mod daemon;
mod events;
mod executors;
mod fail;
mod handle;
mod hooks;
mod leftovers;
mod limits;
mod receive;
mod reported;
mod restart;
mod serve;
mod shared;
mod spread;
mod streamed;
mod wire;

use std::ffi::OsString;
use std::path::PathBuf;

/// The daemon executable's entry point: `jobctl-daemon --home DIR
/// [--plugin FILE]...` runs the session daemon of DIR until the session
/// ends; `jobctl-daemon __worker ...` runs a script job's worker process.
/// Returns the exit code.
pub fn daemon_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let mut args = args.into_iter().peekable();
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
    let result = jobs_protocol::home::Home::resolve(home)
        .map_err(anyhow::Error::from)
        .and_then(|h| daemon::run(h, plugins));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("jobctl-daemon: {e:#}");
            1
        }
    }
}
