//! `jobctl`: PowerShell-style background jobs from the shell.
//!
//! A thin entry point: parse the command line, run it, print an error as
//! one `jobctl: ...` line with its cause chain, and exit with the code the
//! contract names (see `exit`).

mod cli;
mod client;
mod daemon;
mod dispatch;
mod executors;
mod exit;
mod home;
mod output;
mod protocol;
mod render;
mod serve;

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
