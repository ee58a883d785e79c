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
mod store;

use clap::Parser;

fn main() {
    #[cfg(feature = "script")]
    {
        let mut args = std::env::args_os().skip(1).peekable();
        if args.peek().is_some_and(|a| a == jobs_script::WORKER_ARG) {
            std::process::exit(jobs_script::worker_main(args.skip(1)));
        }
    }
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
