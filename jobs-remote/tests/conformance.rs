//! The jobs-core executor conformance suite against a loopback sshd.

use std::sync::Arc;

use jobs_core::{JobExecutor, JobSpec};
use jobs_remote::{RemoteSpec, SshExecutor};

use crate::sshd::Sshd;

/// One sshd per case, killed when the case ends.
struct RemoteSubject {
    sshd: Sshd,
}

impl RemoteSubject {
    fn start() -> Self {
        RemoteSubject {
            sshd: Sshd::start(),
        }
    }

    fn spec(&self, command: String) -> JobSpec {
        RemoteSpec::new([self.sshd.host("127.0.0.1")], command).into_job_spec()
    }
}

use jobs_core::shell_quote as quote;

impl jobs_core::conformance::Subject for RemoteSubject {
    fn executor(&self) -> Arc<dyn JobExecutor> {
        Arc::new(SshExecutor::with_options(self.sshd.options()))
    }

    fn emit(&self, lines: &[&str]) -> JobSpec {
        let args: Vec<String> = lines.iter().map(|l| quote(l)).collect();
        self.spec(format!("printf '%s\\n' {}", args.join(" ")))
    }

    fn sleep(&self, secs: u64) -> JobSpec {
        self.spec(format!("sleep {secs}"))
    }

    fn fail(&self, marker: &str) -> JobSpec {
        // A login as a user that does not exist: the reason names the host
        // as written, user included.
        let host = format!("{marker}@{}", self.sshd.host("127.0.0.1"));
        RemoteSpec::new([host], "true").into_job_spec()
    }
}

jobs_core::conformance_tests!(RemoteSubject::start());
