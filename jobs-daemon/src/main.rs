//! `jobctl-daemon`: the session daemon of one jobctl home, started by the
//! first `jobctl` command that needs it; also the worker process of script
//! jobs.

fn main() {
    std::process::exit(jobs_daemon::daemon_main(std::env::args_os().skip(1)));
}
