//! `jobctl`: PowerShell-style background jobs from the shell.
//!
//! The command is a small client. It parses the command line (`cli`),
//! finds or starts the session daemon of its home and talks to it over a
//! Unix socket (`client`, speaking [`jobs_protocol`]), and writes the
//! answers: job rows (`render`) and records byte for byte (`output`). It
//! depends on jobs-protocol and on jobs-core for the model's types only;
//! the executors, the store and the async runtime live in the daemon
//! (crate jobs-daemon, executable `jobctl-daemon`, found next to this one),
//! so each command starts in a fraction of a millisecond.
//!
//! Errors are printed once, at this edge: one `jobctl: ...` line with the
//! cause chain, and the exit code the contract names (see `exit`).

mod cli;
mod client;
mod dispatch;
mod each;
mod events;
mod exit;
mod hosts;
mod output;
mod progress;
mod render;
mod stdout;
mod summary;
mod top;
mod view;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match dispatch::run(cli) {
        Ok(code) => code,
        Err(err) => match err.downcast_ref::<exit::Exit>() {
            Some(e) => {
                if !e.message.is_empty() {
                    eprintln!("jobctl: {}", e.message);
                }
                e.code
            }
            None => {
                eprintln!("jobctl: {err:#}");
                exit::FAILURE
            }
        },
    };
    std::process::exit(code);
}
