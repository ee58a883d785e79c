//! The jobs-core executor conformance suite against `ProcessExecutor`.

use std::sync::Arc;

use jobs_core::{JobExecutor, JobSpec};
use jobs_process::{ProcessExecutor, ProcessSpec};

struct Subject;

impl jobs_core::conformance::Subject for Subject {
    fn executor(&self) -> Arc<dyn JobExecutor> {
        Arc::new(ProcessExecutor::new())
    }
    fn emit(&self, lines: &[&str]) -> JobSpec {
        let mut argv = vec!["printf", "%s\\n"];
        argv.extend_from_slice(lines);
        ProcessSpec::program(argv).into_job_spec()
    }
    fn sleep(&self, secs: u64) -> JobSpec {
        ProcessSpec::program(["sleep".to_string(), secs.to_string()]).into_job_spec()
    }
    fn fail(&self, marker: &str) -> JobSpec {
        ProcessSpec::program([format!("/nonexistent/{marker}")]).into_job_spec()
    }
}

jobs_core::conformance_tests!(Subject);
