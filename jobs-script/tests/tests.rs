//! Integration tests of scripts: as thread jobs of a session, as a worker
//! in this process (a pipe for the records channel), and as a real worker
//! process (the `script-worker` example).

#[path = "cases/process.rs"]
mod process;
#[path = "cases/support.rs"]
mod support;
#[path = "cases/thread.rs"]
mod thread;
#[path = "cases/worker.rs"]
mod worker;
