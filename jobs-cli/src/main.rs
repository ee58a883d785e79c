//! `jobctl`: PowerShell-style background jobs from the shell.
//!
//! A thin entry point: parse the command line, run it, print an error as
//! one `jobctl: ...` line with its cause chain, and exit with the code the
//! contract names (see `exit`). The session daemon is another executable,
//! `jobctl-daemon`, next to this one.

mod cli;
mod client;
mod dispatch;
mod exit;
mod output;
mod render;

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
