//! Following one submitted job to its end: each poll reads the new output,
//! tells state changes, and at the end maps Slurm's state to the job's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobContext, JobFailure, Record, StopToken, Stream};

use crate::files::{read_from, JobDir, Saved};
use crate::poller::{Observation, Poller};
use crate::status::{Phase, SlurmStatus};
use crate::tools::{blocking, Tools};
use crate::SlurmError;

/// Largest record: output arrives in chunks of at most this many bytes.
const CHUNK: usize = 1 << 20;
/// Most bytes per stream read in one go, before records are emitted.
const READ_LIMIT: usize = 8 << 20;
/// Polls in a row that may not find the job before it counts as lost.
const MISSING_LIMIT: u32 = 5;
/// How long after `scancel` the job may take to show an end.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// One job being followed.
pub(crate) struct Follower {
    tools: Tools,
    poller: Arc<Poller>,
    dir: JobDir,
    saved: Saved,
    ctx: JobContext,
    /// The last state told (state and reason), to tell only changes.
    told: Option<(String, String)>,
    /// Whether the session was told the job runs.
    started: bool,
    /// The node list the job was last moved to.
    nodes: Option<String>,
    warned_query: bool,
    warned_read: bool,
}

impl Follower {
    pub(crate) fn new(
        tools: Tools,
        poller: Arc<Poller>,
        dir: JobDir,
        saved: Saved,
        ctx: JobContext,
    ) -> Follower {
        Follower {
            tools,
            poller,
            dir,
            saved,
            ctx,
            told: None,
            started: false,
            nodes: None,
            warned_query: false,
            warned_read: false,
        }
    }

    fn id(&self) -> &str {
        &self.saved.slurm_id
    }

    /// Follows the job until Slurm reports its end.
    pub(crate) async fn run(mut self) -> Result<(), JobFailure> {
        let mut guard = CancelOnDrop {
            armed: true,
            stop: self.ctx.stop_token(),
            tools: self.tools.clone(),
            slurm_id: self.saved.slurm_id.clone(),
            conf: self.saved.slurm_conf.clone(),
            dir: self.dir.clone(),
        };
        let result = self.follow().await;
        guard.armed = false;
        self.drain().await;
        if let Err(e) = self.dir.remove() {
            self.ctx.warning(JobFailure::from_error(&e).reason);
        }
        result
    }

    async fn follow(&mut self) -> Result<(), JobFailure> {
        let mut watch = self
            .poller
            .watch(&self.saved.slurm_id, self.saved.slurm_conf.clone())
            .map_err(|e| JobFailure::new(format!("cannot start the Slurm poller: {e}")))?;
        let mut stop_deadline: Option<tokio::time::Instant> = None;
        if self.ctx.stop_requested() {
            self.cancel().await;
            stop_deadline = Some(tokio::time::Instant::now() + STOP_GRACE);
            watch.poll_now();
        }
        loop {
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                changed = watch.rx.changed() => {
                    if changed.is_err() {
                        return Err(JobFailure::new("the Slurm poller ended"));
                    }
                }
                _ = self.ctx.stopped(), if stop_deadline.is_none() => {
                    self.cancel().await;
                    stop_deadline = Some(tokio::time::Instant::now() + STOP_GRACE);
                    watch.poll_now();
                    continue;
                }
                _ = tokio::time::sleep_until(stop_deadline.unwrap_or(far)), if stop_deadline.is_some() => {
                    return Err(JobFailure::new(format!(
                        "Slurm job {} did not end within {}s of scancel; it may still run",
                        self.id(),
                        STOP_GRACE.as_secs()
                    )));
                }
            }
            let obs = watch.rx.borrow_and_update().clone();
            self.drain().await;
            match obs {
                Observation::Waiting => {}
                Observation::QueryFailed(msg) => {
                    if !self.warned_query {
                        self.warned_query = true;
                        self.ctx
                            .warning(format!("cannot ask Slurm about job {}: {msg}", self.id()));
                    }
                }
                Observation::Missing(n) if n >= MISSING_LIMIT => {
                    return Err(JobFailure::new(format!(
                        "Slurm job {} is unknown to the cluster (squeue and sacct do not list it)",
                        self.id()
                    )));
                }
                Observation::Missing(_) => {}
                Observation::Seen(status) => {
                    self.warned_query = false;
                    self.tell(&status);
                    self.show(&status);
                    if let Some(end) = self.end(&status) {
                        return end;
                    }
                }
            }
        }
    }

    /// `scancel`; a failure (the job already ended, say) is told, and the
    /// poll shows what became of the job.
    async fn cancel(&mut self) {
        let tools = self.tools.clone();
        let id = self.saved.slurm_id.clone();
        let conf = self.saved.slurm_conf.clone();
        if let Err(e) = blocking(move || tools.scancel(&id, conf.as_deref())).await {
            self.ctx.warning(JobFailure::from_error(&e).reason);
        }
    }

    /// Tells a change of Slurm state as a Verbose record.
    fn tell(&mut self, status: &SlurmStatus) {
        let now = (status.state.clone(), status.reason.clone());
        if self.told.as_ref() == Some(&now) {
            return;
        }
        let mut line = format!("Slurm job {} is {}", self.id(), status.state);
        if let Some(r) = status.reason() {
            line.push_str(&format!(" ({r})"));
        }
        if let Some(nodes) = status.nodes() {
            line.push_str(&format!(" on {nodes}"));
        }
        self.ctx.verbose(line);
        self.told = Some(now);
    }

    /// Shows the job's start (once Slurm runs it) and its node list (the
    /// job's location) to the session.
    fn show(&mut self, status: &SlurmStatus) {
        let ran = matches!(
            status.phase(),
            Phase::Running | Phase::Completed | Phase::Failed
        );
        if ran && !self.started {
            // Fails only once the session is gone: nothing to show then.
            let _ = self.ctx.set_running();
            self.started = true;
        }
        if let Some(nodes) = status.nodes() {
            if self.nodes.as_deref() != Some(nodes) {
                let _ = self.ctx.set_location(nodes);
                self.nodes = Some(nodes.to_string());
            }
        }
    }

    /// The job's end, if `status` is one.
    fn end(&self, status: &SlurmStatus) -> Option<Result<(), JobFailure>> {
        let exit_code = status.exit.filter(|e| e.signal == 0).map(|e| e.code);
        let phase = status.phase();
        if matches!(phase, Phase::Completed | Phase::Cancelled | Phase::Failed) {
            if let Some(code) = exit_code {
                self.ctx.set_exit_code(code);
            }
        }
        let failed = |what: String| {
            Some(Err(JobFailure {
                reason: format!("Slurm job {} '{}' {what}", self.id(), self.saved.name),
                exit_code,
            }))
        };
        match phase {
            Phase::Queued | Phase::Running => None,
            Phase::Completed => Some(Ok(())),
            // Asked for: the session makes it Stopped.
            Phase::Cancelled if self.ctx.stop_requested() => Some(Ok(())),
            Phase::Cancelled => failed(format!(
                "was cancelled outside this session ({})",
                status.describe()
            )),
            Phase::Failed => failed(format!("ended {}", status.describe())),
        }
    }

    /// Emits what the output files gained since the last read, and notes
    /// how far they were read (after emitting: a crash in between repeats
    /// a chunk rather than losing it).
    async fn drain(&mut self) {
        loop {
            let (out, err) = (self.dir.out(), self.dir.err());
            let (out_at, err_at) = (self.saved.out_read, self.saved.err_read);
            let read = blocking(move || {
                Ok((
                    read_from(&out, out_at, READ_LIMIT, CHUNK)?,
                    read_from(&err, err_at, READ_LIMIT, CHUNK)?,
                ))
            })
            .await;
            let (out, err) = match read {
                Ok(chunks) => chunks,
                Err(e) => {
                    self.warn_read(e);
                    return;
                }
            };
            let len = |c: &[Vec<u8>]| c.iter().map(Vec::len).sum::<usize>();
            let more = len(&out) >= READ_LIMIT || len(&err) >= READ_LIMIT;
            if out.is_empty() && err.is_empty() {
                return;
            }
            for chunk in out {
                self.saved.out_read += chunk.len() as u64;
                self.ctx.emit(Record::bytes(Stream::Output, chunk));
            }
            for chunk in err {
                self.saved.err_read += chunk.len() as u64;
                self.ctx.emit(Record::bytes(Stream::Error, chunk));
            }
            // Saved in place, not on a blocking thread: a session that
            // closes right after receiving these records must find their
            // offsets saved (a blocking task still queued when the runtime
            // shuts down never runs), and this is a write of a few bytes
            // and a rename.
            if let Err(e) = self.dir.save(&self.saved) {
                self.warn_read(e);
            }
            if !more {
                return;
            }
        }
    }

    fn warn_read(&mut self, e: SlurmError) {
        if !self.warned_read {
            self.warned_read = true;
            self.ctx.warning(JobFailure::from_error(&e).reason);
        }
    }
}

/// Cancels a job whose follower was dropped after a stop request (its
/// session went away mid-stop) and deletes its folder; a follower dropped
/// without one leaves both for a later session to re-adopt.
pub(crate) struct CancelOnDrop {
    pub(crate) armed: bool,
    pub(crate) stop: StopToken,
    pub(crate) tools: Tools,
    pub(crate) slurm_id: String,
    pub(crate) conf: Option<PathBuf>,
    pub(crate) dir: JobDir,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed && self.stop.is_stopped() {
            let _ = self.tools.scancel(&self.slurm_id, self.conf.as_deref());
            let _ = self.dir.remove();
        }
    }
}
