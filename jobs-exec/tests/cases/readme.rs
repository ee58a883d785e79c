//! The smallest executor of plugins/README.md, run as written.

use std::sync::Arc;

use jobs_core::{JobSpec, JobState, ReceiveOptions};
use jobs_exec::ExecutableExecutor;

use crate::support::install;

const README: &str = include_str!("../../../plugins/README.md");

/// The Python block after "The smallest complete executor".
fn hello_block() -> &'static str {
    let after = README
        .split_once("The smallest complete executor")
        .map(|(_, rest)| rest)
        .expect("the README has the smallest executor");
    let (_, block) = after
        .split_once("```python\n")
        .expect("a python block follows");
    let (block, _) = block.split_once("```").expect("the block ends");
    block
}

#[test]
fn the_readmes_smallest_executor_runs_a_job() {
    let file = install("readme-hello", "hello", hello_block());
    let s = super::session(Arc::new(ExecutableExecutor::new("hello", file)));
    let id = s.start(JobSpec::new("hello", "the README")).expect("start");
    let info = super::finish(&s, id);
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(
        jobs_core::conformance::output_lines(&recs),
        ["hello from the README"]
    );
}
