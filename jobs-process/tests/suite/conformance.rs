//! The jobs-core executor conformance suite against `ProcessExecutor`.

use std::sync::Arc;

use jobs_core::{JobExecutor, JobSpec};
use jobs_process::{ProcessExecutor, ProcessSpec};

/// The executor under test, with this many I/O threads of its own, or
/// (`None`) driving its I/O on the session's runtime.
struct Subject(Option<usize>);

impl jobs_core::conformance::Subject for Subject {
    fn executor(&self) -> Arc<dyn JobExecutor> {
        Arc::new(match self.0 {
            Some(threads) => ProcessExecutor::new().io_threads(threads),
            None => ProcessExecutor::new().on_session_runtime(),
        })
    }
    fn emit(&self, lines: &[&str]) -> JobSpec {
        // One write per line (dash's builtin printf flushes per command), so
        // every Bytes record ends at a line end, as the suite expects; a
        // buffered writer's chunks could end mid-line.
        let mut argv = vec![
            "/bin/sh",
            "-c",
            r#"for l in "$@"; do printf '%s\n' "$l"; done"#,
            "sh",
        ];
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

jobs_core::conformance_tests!(Subject(Some(jobs_process::DEFAULT_IO_THREADS)));

/// The same suite with one I/O thread, as the session daemon runs it.
mod one_io_thread {
    use super::Subject;

    jobs_core::conformance_tests!(Subject(Some(1)));
}

/// The same suite with the I/O on the session's own runtime.
mod on_session_runtime {
    use super::Subject;

    jobs_core::conformance_tests!(Subject(None));
}
