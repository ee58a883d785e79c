//! The executor: spawns the `unshare` command line of a job, streams its
//! output line by line, and ends every process of the job on stop.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use jobs_core::{async_trait, JobContext, JobExecutor, JobFailure, JobSpec, Record, Stream};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::NamespaceJob;

/// The job type of [`NamespaceExecutor`].
pub const TYPE: &str = "NamespaceJob";

/// Longest record: a longer line arrives in pieces of this size.
const MAX_RECORD: usize = 64 * 1024;

/// Runs shell lines in fresh namespaces; see the crate docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct NamespaceExecutor;

/// Streams a pipe into records of `stream`, one per line (newline kept,
/// bytes exact); returns the last non-empty line.
async fn pump<R: AsyncRead + Unpin>(pipe: R, ctx: &JobContext, stream: Stream) -> Vec<u8> {
    let mut reader = BufReader::with_capacity(MAX_RECORD, pipe);
    let mut line = Vec::new();
    let mut last = Vec::new();
    loop {
        let buf = match reader.fill_buf().await {
            Ok(b) if !b.is_empty() => b,
            _ => break,
        };
        let (n, ends) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..n]);
        reader.consume(n);
        if ends || line.len() >= MAX_RECORD {
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                last.clone_from(&line);
            }
            ctx.emit(Record::bytes(stream, std::mem::take(&mut line)));
        }
    }
    if !line.is_empty() {
        last.clone_from(&line);
        ctx.emit(Record::bytes(stream, line));
    }
    last
}

#[async_trait]
impl JobExecutor for NamespaceExecutor {
    fn type_name(&self) -> &str {
        TYPE
    }

    fn location(&self, spec: &JobSpec) -> String {
        match NamespaceJob::from_spec(spec) {
            Ok(job) if !job.namespaces.is_empty() => {
                format!("localhost[{}]", job.namespaces.join(","))
            }
            _ => "localhost".to_string(),
        }
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let job = NamespaceJob::from_spec(&spec)?;
        let argv = job.argv();
        let mut cmd = Command::new(&argv[0]);
        if job.env_clear {
            cmd.env_clear();
        }
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .envs(&job.env);
        if let Some(h) = &job.hostname {
            cmd.env("JOBS_NAMESPACE_HOSTNAME", h);
        }
        if let Some(dir) = &job.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| JobFailure::new(format!("cannot start {}: {e}", argv[0])))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(JobFailure::new("the job's pipes are missing"));
        };
        let waited = async {
            tokio::select! {
                status = child.wait() => status,
                _ = ctx.stopped() => {
                    // SIGKILL to unshare; its child, PID 1 of the job's
                    // namespace, gets SIGKILL too (--kill-child), and the
                    // kernel ends every other process of the namespace.
                    let _ = child.start_kill();
                    child.wait().await
                }
            }
        };
        let (_, last_err, status) = tokio::join!(
            pump(stdout, &ctx, Stream::Output),
            pump(stderr, &ctx, Stream::Error),
            waited
        );
        let status =
            status.map_err(|e| JobFailure::new(format!("cannot wait for the job: {e}")))?;
        if ctx.stop_requested() {
            return Ok(());
        }
        match (status.code(), status.signal()) {
            (Some(0), _) => {
                ctx.set_exit_code(0);
                Ok(())
            }
            (Some(code), _) => {
                let last = String::from_utf8_lossy(&last_err);
                let last = last.trim();
                Err(if last.is_empty() {
                    JobFailure::exited(code)
                } else {
                    JobFailure::exited(code).with_detail(last)
                })
            }
            (None, Some(sig)) => Err(JobFailure::signaled(sig)),
            (None, None) => Err(JobFailure::new("ended without an exit status")),
        }
    }
}
