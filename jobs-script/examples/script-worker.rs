//! A worker binary as a CLI wires one: `script-worker __worker -e SCRIPT`.

fn main() {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == jobs_script::WORKER_ARG) {
        std::process::exit(jobs_script::worker_main(args.skip(1)));
    }
    eprintln!(
        "usage: script-worker __worker [--limits JSON] (-e SCRIPT | --script FILE | --stdin-bytes N)"
    );
    std::process::exit(jobs_script::EXIT_USAGE);
}
