//! A job bound to its session: pipes for stdout, stderr and records, its
//! group registered with the watcher, stop by SIGTERM then SIGKILL.

use std::future::Future;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use jobs_core::{JobContext, JobFailure, Record, Stream};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::runtime::Handle;

use crate::group::{group_alive, signal_group, sleep, terminate_group, Ending};
use crate::lent::Lent;
use crate::pidfd::{self, OwnChild};
use crate::records::{failure_reason, LineDecoder};
use crate::spawn::{check_cwd, spawn_as, Launch};
use crate::ticker;
use crate::watcher::Watcher;
use crate::ProcessSpec;

/// The largest read, and so the largest Bytes record, from stdout/stderr.
pub(crate) const CHUNK: usize = 1 << 20;
/// The read size while a pipe has its default 64 KiB buffer.
const SMALL_CHUNK: usize = 64 << 10;
/// The records channel's first read buffer: it is zeroed, and most jobs
/// send few records or none.
const FIRST_READ: usize = 4 << 10;
/// Reads this large hand their buffer over; smaller ones are copied out.
const HAND_OVER: usize = 32 << 10;

/// How long output pipes may stay open once the job's process group is
/// gone (a process that left the group with `setsid` may hold them).
const LINGER: Duration = Duration::from_secs(2);

pub(crate) async fn run(ex: Lent, spec: ProcessSpec, ctx: JobContext) -> Result<(), JobFailure> {
    let io = ex.io.clone();
    check_cwd(&spec)?;
    ex.watcher
        .ensure()
        .map_err(|e| JobFailure::new(format!("cannot start the process watcher: {e}")))?;
    // Both ends blocking: the read end is made non-blocking only if the
    // pipe comes to be watched.
    let (rec_read, rec_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| JobFailure::new(format!("cannot create the records pipe: {e}")))?;
    let argv = spec.argv();
    let shown = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let launch = Launch {
        argv,
        shown,
        stdout: Stdio::piped(),
        stderr: Stdio::piped(),
        records: rec_write,
    };
    let (mut child, pipes) = if pidfd::supported() && !fallback_forced() {
        let mut child: OwnChild = spawn_as(&io, &spec, launch)?;
        child.watch();
        let (stdout, stderr) = child.take_output();
        let pipes = Pipes::Idle([stdout, stderr, Some(rec_read)]);
        (Proc::Own(child), pipes)
    } else {
        // Without pidfds: tokio's child, its pipes watched from the start.
        let mut child: Child = spawn_as(&io, &spec, launch)?;
        let records = watch_pipe(&io, rec_read)
            .map_err(|e| JobFailure::new(format!("cannot watch the records pipe: {e}")))?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        (Proc::Tokio(child), Pipes::Tokio(stdout, stderr, records))
    };
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| JobFailure::new("the job's process has no pid"))?;
    if let Err(e) = ex.watcher.add(pgid) {
        // Without a watcher the tree could outlive a killed host: refuse.
        signal_group(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
        return Err(JobFailure::new(format!(
            "cannot register the job with the process watcher: {e}"
        )));
    }
    let guard = GroupGuard {
        io: io.clone(),
        pgid,
        grace: ex.grace,
        watcher: Arc::clone(&ex.watcher),
        armed: true,
    };
    let paused = ex.groups.register(&ctx, pgid);

    let ctx = Arc::new(ctx);
    let failure_slot = Arc::new(Mutex::new(None::<String>));
    let traffic = Arc::new(Traffic::default());
    // A job of our own child that ends quickly is seen to end by one
    // readiness, its pidfd's, and its pipes read once, at their end: not
    // watched at all. Its pipes are watched once it has run a while, is
    // stopped, or left them open to other processes.
    let mut early = None;
    let pumps = match pipes {
        Pipes::Tokio(stdout, stderr, records) => {
            pumps(stdout, stderr, Some(records), &ctx, &failure_slot, &traffic)
        }
        Pipes::Idle(mut fds) => {
            tokio::select! {
                biased;
                st = child.wait() => {
                    early = Some(st);
                    drain_ended(&mut fds, &ctx, &failure_slot);
                }
                _ = ctx.stopped() => {}
                _ = ticker::after_or_timer(WATCH_AFTER, &io) => {}
            }
            let [stdout, stderr, records] = fds.map(|fd| {
                fd.map(|fd| watch_pipe(&io, fd))
                    .transpose()
                    .map_err(|e| JobFailure::new(format!("cannot watch the job's output: {e}")))
            });
            pumps(stdout?, stderr?, records?, &ctx, &failure_slot, &traffic)
        }
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let readers = async {
        let linger = async {
            let _ = done_rx.await;
            sleep(&io, LINGER).await;
        };
        // Biased: pumps already at end of file win without a linger timer
        // ever being armed. Pipes still held open past the linger are
        // abandoned, not read on (dropping the pumps closes them).
        tokio::select! {
            biased;
            _ = drive_pumps(&io, pumps, &traffic) => {}
            _ = linger => {}
        }
    };

    let supervise = async {
        let exited = match early {
            Some(st) => Some(st),
            None => tokio::select! {
                st = exit_of(&mut child, &traffic) => Some(st),
                _ = ctx.stopped() => None,
            },
        };
        let result = match exited {
            Some(st) => {
                // The job is its tree: whatever the main process left
                // running in its group ends with it.
                if group_alive(pgid) {
                    terminate_group(&io, pgid, ex.grace).await;
                }
                match st {
                    Ok(st) => status_result(st, &ctx),
                    Err(e) => Err(JobFailure::new(format!(
                        "cannot wait for the job's process: {e}"
                    ))),
                }
            }
            None => {
                let ending = Ending::of(ctx.stop_options(), ex.grace);
                let (killed, _) = tokio::join!(ending.terminate(&io, pgid), child.wait());
                if killed {
                    Err(ending.killed())
                } else {
                    Ok(())
                }
            }
        };
        // The group is gone (or past its SIGKILL wait): forgotten now, so
        // that neither a suspend nor a run dropped while the pipes linger
        // signals a group whose id a new process may already reuse.
        drop(paused);
        guard.release();
        let _ = done_tx.send(());
        result
    };

    let ((), result) = tokio::join!(readers, supervise);
    let reason = failure_slot
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match (result, reason) {
        (Err(mut f), Some(reason)) if f.exit_code.is_some() => {
            f.reason = reason;
            Err(f)
        }
        (result, _) => result,
    }
}

/// Tests run jobs the way kernels without pidfds do, on tokio's child.
#[cfg(test)]
static FORCE_FALLBACK: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
fn fallback_forced() -> bool {
    FORCE_FALLBACK.load(Ordering::Relaxed)
}

#[cfg(not(test))]
fn fallback_forced() -> bool {
    false
}

/// How long a job of our own child runs at least before its pipes are
/// watched (up to [`ticker::GRID`] more): a job that ends sooner has its
/// output read once, at its end.
const WATCH_AFTER: Duration = Duration::from_millis(2);

/// A job's process: tokio's child, or our own (see [`crate::pidfd`]).
enum Proc {
    Tokio(Child),
    Own(OwnChild),
}

impl Proc {
    fn id(&self) -> Option<u32> {
        match self {
            Proc::Tokio(c) => c.id(),
            Proc::Own(c) => c.id(),
        }
    }

    fn poll_wait(&mut self, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<ExitStatus>> {
        match self {
            // tokio's wait keeps its waker registered between polls.
            Proc::Tokio(c) => std::pin::pin!(c.wait()).poll(cx),
            Proc::Own(c) => c.poll_wait(cx),
        }
    }

    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match self {
            Proc::Tokio(c) => c.try_wait(),
            Proc::Own(c) => c.try_wait(),
        }
    }

    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        std::future::poll_fn(|cx| self.poll_wait(cx)).await
    }
}

/// A job's stdout, stderr and records pipes as spawned.
enum Pipes {
    /// tokio's child's pipes (watched) and the records pipe (watched).
    Tokio(Option<ChildStdout>, Option<ChildStderr>, pipe::Receiver),
    /// Our own child's: plain descriptors, not watched yet.
    Idle([Option<OwnedFd>; 3]),
}

/// Registers a pipe's read end with the runtime `io`, non-blocking.
fn watch_pipe(io: &Handle, fd: OwnedFd) -> std::io::Result<pipe::Receiver> {
    // A pipe's read end has no other status flag to keep.
    nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
    )?;
    let _g = io.enter();
    pipe::Receiver::from_owned_fd_unchecked(fd)
}

/// Reads to their end, once the job's process has exited, the pipes
/// (stdout, stderr, records) that no process holds open any more; the
/// others are left in place, to be watched.
fn drain_ended(fds: &mut [Option<OwnedFd>; 3], ctx: &JobContext, failure: &Mutex<Option<String>>) {
    let ended: Vec<(bool, bool)> = {
        let mut polled: Vec<PollFd<'_>> = fds
            .iter()
            .flatten()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        if poll(&mut polled, PollTimeout::ZERO).is_err() {
            return;
        }
        polled
            .iter()
            .map(|p| {
                let r = p.revents().unwrap_or(PollFlags::empty());
                (
                    r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR),
                    r.contains(PollFlags::POLLIN),
                )
            })
            .collect()
    };
    let mut ended = ended.into_iter();
    for (i, slot) in fds.iter_mut().enumerate() {
        if slot.is_none() {
            continue;
        }
        let Some((hup, data)) = ended.next() else {
            return;
        };
        if !hup {
            continue;
        }
        let Some(fd) = slot.take() else {
            continue;
        };
        if !data {
            // At end of file and empty: nothing to read.
            continue;
        }
        // No writer is left: a blocking read returns what the pipe holds,
        // then end of file.
        let mut data = Vec::new();
        let read = std::fs::File::from(fd).read_to_end(&mut data);
        match i {
            2 => {
                let mut decoder = LineDecoder::default();
                let mut emit = record_emitter(ctx, failure);
                decoder.feed(&data, &mut emit);
                if let Err(e) = read {
                    emit(Record::text(
                        Stream::Error,
                        format!("reading the records channel failed: {e}"),
                    ));
                }
                decoder.finish(&mut emit);
            }
            _ => {
                let stream = if i == 0 {
                    Stream::Output
                } else {
                    Stream::Error
                };
                if data.len() <= CHUNK {
                    if !data.is_empty() {
                        ctx.emit(Record::bytes(stream, data));
                    }
                } else {
                    for chunk in data.chunks(CHUNK) {
                        ctx.emit(Record::bytes(stream, chunk.to_vec()));
                    }
                }
                if let Err(e) = read {
                    ctx.emit(Record::text(
                        Stream::Error,
                        format!("reading the job's {stream} failed: {e}"),
                    ));
                }
            }
        }
    }
}

/// A job's pumps over the pipes that are still to be read.
fn pumps<O, E>(
    stdout: Option<O>,
    stderr: Option<E>,
    records: Option<pipe::Receiver>,
    ctx: &Arc<JobContext>,
    failure: &Arc<Mutex<Option<String>>>,
    traffic: &Arc<Traffic>,
) -> Pumps
where
    O: AsyncRead + AsFd + Unpin + Send + 'static,
    E: AsyncRead + AsFd + Unpin + Send + 'static,
{
    let ctx = Arc::clone(ctx);
    let failure = Arc::clone(failure);
    let traffic = Arc::clone(traffic);
    Box::pin(async move {
        tokio::join!(
            pump_bytes(stdout, Stream::Output, Arc::clone(&ctx), &traffic),
            pump_bytes(stderr, Stream::Error, Arc::clone(&ctx), &traffic),
            pump_records(records, ctx, failure),
        );
        traffic.closed.store(true, Ordering::Release);
    })
}

/// The job's result from its main process's exit status; sets the exit code.
pub(crate) fn status_result(st: ExitStatus, ctx: &JobContext) -> Result<(), JobFailure> {
    match (st.code(), st.signal()) {
        (Some(0), _) => {
            ctx.set_exit_code(0);
            Ok(())
        }
        (Some(code), _) => {
            ctx.set_exit_code(code);
            Err(JobFailure::exited(code))
        }
        (None, Some(sig)) => Err(JobFailure::signaled(sig)),
        (None, None) => Err(JobFailure::new(format!("ended with {st}"))),
    }
}

/// A job's output pumps: stdout, stderr and the records channel, read to
/// their end.
type Pumps = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Reads a job's output pumps to their end: inside the job's own run while
/// the job writes little, on the I/O runtime once it writes a lot.
///
/// A quiet job's pipes then cost no task and no thread hop: the wake-up
/// that reports its process's exit also finds its pipes at end of file. A
/// busy writer's reads are done on the thread that saw the pipe become
/// readable (the I/O runtime's), with no hop to the session's thread per
/// read. Dropping this drops the pumps wherever they run.
async fn drive_pumps(io: &Handle, mut pumps: Pumps, traffic: &Traffic) {
    let done = std::future::poll_fn(|cx| match pumps.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(true),
        Poll::Pending if traffic.busy() => Poll::Ready(false),
        Poll::Pending => Poll::Pending,
    })
    .await;
    if done {
        return;
    }
    let task = AbortOnDrop(io.spawn(pumps));
    task.finished().await;
}

/// Waits for the job's main process to exit. Once the job's pipes are all
/// at end of file (most often because that process exited), an exited
/// process is reaped right away rather than on the separate report of its
/// exit, which comes a moment later: one wake-up of the job instead of two.
fn exit_of<'a>(
    child: &'a mut Proc,
    traffic: &'a Traffic,
) -> impl Future<Output = std::io::Result<ExitStatus>> + 'a {
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(st) = child.poll_wait(cx) {
            return Poll::Ready(st);
        }
        if traffic.closed.load(Ordering::Acquire) {
            if let Some(st) = child.try_wait().transpose() {
                return Poll::Ready(st);
            }
        }
        Poll::Pending
    })
}

/// How much a job's stdout and stderr have carried, to tell a busy writer,
/// and whether all its pipes are at end of file.
#[derive(Default)]
struct Traffic {
    reads: AtomicUsize,
    bytes: AtomicUsize,
    closed: AtomicBool,
}

/// Reads after which a job's pumps move to the I/O runtime.
const BUSY_READS: usize = 32;
/// Bytes after which a job's pumps move to the I/O runtime.
const BUSY_BYTES: usize = 256 << 10;

impl Traffic {
    fn note(&self, n: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn busy(&self) -> bool {
        self.reads.load(Ordering::Relaxed) >= BUSY_READS
            || self.bytes.load(Ordering::Relaxed) >= BUSY_BYTES
    }
}

/// A task of the I/O runtime that is aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    async fn finished(mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pipes currently enlarged (see [`BigPipe`]).
static BIG_PIPES: AtomicUsize = AtomicUsize::new(0);
/// At most this many pipes are enlarged at once: enlarged pipes count
/// against the user's pipe buffer allowance (`pipe-user-pages-soft`), past
/// which the kernel gives every new pipe of the user a single page.
const MAX_BIG_PIPES: usize = 8;
/// The size of an enlarged pipe, and the output after which a pipe is.
const BIG_PIPE: usize = 1 << 20;

/// A slot among the enlarged pipes, given back on drop.
struct BigPipe;

impl BigPipe {
    /// Enlarges the pipe if a slot is free.
    fn try_enlarge(fd: &impl AsFd) -> Option<BigPipe> {
        let taken = BIG_PIPES.fetch_add(1, Ordering::AcqRel);
        let size = i32::try_from(BIG_PIPE).unwrap_or(i32::MAX);
        if taken < MAX_BIG_PIPES
            && nix::fcntl::fcntl(
                fd.as_fd().as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETPIPE_SZ(size),
            )
            .is_ok()
        {
            return Some(BigPipe);
        }
        BIG_PIPES.fetch_sub(1, Ordering::AcqRel);
        None
    }
}

impl Drop for BigPipe {
    fn drop(&mut self) {
        BIG_PIPES.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Streams a pipe into Bytes records as the data comes, `CHUNK` at most.
/// A pipe that has carried a lot gets a larger kernel buffer, so a fast
/// writer is handed over in fewer, larger reads.
async fn pump_bytes<R: AsyncRead + AsFd + Unpin>(
    reader: Option<R>,
    stream: Stream,
    ctx: Arc<JobContext>,
    traffic: &Traffic,
) {
    let Some(mut reader) = reader else {
        return;
    };
    let mut total = 0usize;
    let mut big: Option<BigPipe> = None;
    let mut chunk = SMALL_CHUNK;
    // Read into spare capacity: no zeroing of buffers that are handed over,
    // and no page of it touched before data comes. A read takes all the
    // pipe holds (up to its 64 KiB), so a writer's line-sized writes come
    // back as records that end where a write ended.
    let mut buf = Vec::with_capacity(chunk);
    loop {
        match reader.read_buf(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                total += n;
                traffic.note(n);
                if n >= HAND_OVER {
                    // Hand the buffer itself over, no copy, and read into a
                    // new one. Its unused room goes back to the allocator:
                    // shrinking a block splits it in place.
                    let mut read = std::mem::replace(&mut buf, Vec::with_capacity(chunk));
                    if read.capacity() - n >= 4096 {
                        read.shrink_to_fit();
                    }
                    ctx.emit(Record::bytes(stream, read));
                } else {
                    // A small read (a line or so) is cheaper copied out.
                    ctx.emit(Record::bytes(stream, buf.clone()));
                    buf.clear();
                }
                if big.is_none() && total >= BIG_PIPE && chunk == SMALL_CHUNK {
                    big = BigPipe::try_enlarge(&reader);
                    if big.is_some() {
                        chunk = CHUNK;
                        buf = Vec::with_capacity(chunk);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                ctx.emit(Record::text(
                    Stream::Error,
                    format!("reading the job's {stream} failed: {e}"),
                ));
                return;
            }
        }
    }
}

/// Parses the records channel line by line until end of file.
async fn pump_records(
    reader: Option<pipe::Receiver>,
    ctx: Arc<JobContext>,
    failure: Arc<Mutex<Option<String>>>,
) {
    let Some(mut reader) = reader else {
        return;
    };
    let mut decoder = LineDecoder::default();
    // Small until a read fills it: most jobs send few records, or none.
    let mut buf = vec![0u8; FIRST_READ];
    let mut emit = record_emitter(&ctx, &failure);
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                decoder.feed(&buf[..n], &mut emit);
                if n == buf.len() && buf.len() < SMALL_CHUNK {
                    buf = vec![0u8; SMALL_CHUNK];
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                emit(Record::text(
                    Stream::Error,
                    format!("reading the records channel failed: {e}"),
                ));
                break;
            }
        }
    }
    decoder.finish(&mut emit);
}

/// Emits the records channel's records; a failure record is the job's own
/// word on why it fails: it becomes the reason, not a record received twice.
fn record_emitter<'a>(
    ctx: &'a JobContext,
    failure: &'a Mutex<Option<String>>,
) -> impl FnMut(Record) + 'a {
    move |r: Record| match failure_reason(&r) {
        Some(reason) => {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        }
        None => {
            ctx.emit(r);
        }
    }
}

/// Ends the job's group if `run` is dropped before the job ended (the
/// session's runtime shut down): SIGTERM, grace, SIGKILL, on the executor's
/// runtime. Released once the group is known to be gone.
struct GroupGuard {
    io: Handle,
    pgid: i32,
    grace: Duration,
    watcher: Arc<Watcher>,
    armed: bool,
}

impl GroupGuard {
    fn release(mut self) {
        self.armed = false;
        self.watcher.del(self.pgid);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (io, pgid, grace) = (self.io.clone(), self.pgid, self.grace);
        let watcher = Arc::clone(&self.watcher);
        // The first signal goes now: the runtime may be shutting down (a
        // session's own, driving this job's I/O), and then never runs the
        // task below; the watcher ends the group when the executor goes.
        signal_group(pgid, Signal::SIGTERM);
        signal_group(pgid, Signal::SIGCONT);
        self.io.spawn(async move {
            terminate_group(&io, pgid, grace).await;
            watcher.del(pgid);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use jobs_core::{JobState, ReceiveOptions, Session, Stream, WaitMode};

    use crate::{ProcessExecutor, ProcessSpec};

    fn output_of(s: &Session, spec: ProcessSpec) -> (JobState, Vec<u8>, Vec<u8>) {
        let id = s.start(spec.into_job_spec()).expect("start");
        let out = s
            .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(60)))
            .expect("wait");
        assert!(!out.timed_out, "job {id} did not finish");
        let info = s.info(id).expect("info");
        let recs = s
            .receive(&[id], ReceiveOptions::default())
            .expect("receive");
        (
            info.state,
            stream_of(&recs, Stream::Output),
            stream_of(&recs, Stream::Error),
        )
    }

    /// The bytes of one stream of received records, in order.
    fn stream_of(recs: &[jobs_core::Received], stream: Stream) -> Vec<u8> {
        recs.iter()
            .filter(|r| r.record.stream == stream)
            .flat_map(|r| r.record.payload.to_display_bytes())
            .collect()
    }

    /// A job's process that exits at once, while a process of its group
    /// (deaf to SIGTERM, which it inherits) still writes to its stdout and
    /// stderr: the pipes are not at their end when the exit is seen, so
    /// they are watched, and read to their end once the group is gone.
    #[test]
    fn output_written_after_a_quick_exit_still_comes_back() {
        for ex in [
            ProcessExecutor::new(),
            ProcessExecutor::new().on_session_runtime(),
        ] {
            let s = Session::new().expect("session");
            s.register(Arc::new(ex.grace_period(Duration::from_secs(30))));
            let (state, out, err) = output_of(
                &s,
                ProcessSpec::shell(
                    "trap '' TERM; (sleep 0.3; echo late; echo late-err >&2) & echo early",
                ),
            );
            assert_eq!(state, JobState::Completed);
            assert_eq!(String::from_utf8_lossy(&out), "early\nlate\n");
            assert_eq!(String::from_utf8_lossy(&err), "late-err\n");
        }
    }

    /// Quick jobs, read at their end, and jobs that outlive the time after
    /// which their pipes are watched, give the same records and status.
    #[test]
    fn quick_and_slow_jobs_give_the_same_output() {
        quick_and_slow();
    }

    /// Without pidfds (tokio's child and its SIGCHLD handling), the same.
    /// Other tests running meanwhile may take that path too: it must give
    /// the same results.
    #[test]
    fn without_pidfds_jobs_give_the_same_output() {
        super::FORCE_FALLBACK.store(true, std::sync::atomic::Ordering::Relaxed);
        quick_and_slow();
        super::FORCE_FALLBACK.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    fn quick_and_slow() {
        let s = Session::new().expect("session");
        s.register(Arc::new(ProcessExecutor::new()));
        let script = |pause: &str| {
            format!(
                "printf 'a\\nb'; printf 'e' >&2; sleep {pause}; \
                 echo '{{\"stream\":\"warning\",\"kind\":\"text\",\"data\":\"w\"}}' >>/dev/fd/$JOBCTL_RECORDS_FD; \
                 exit 4"
            )
        };
        for pause in ["0", "0.05"] {
            let id = s
                .start(ProcessSpec::shell(script(pause)).into_job_spec())
                .expect("start");
            s.wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(60)))
                .expect("wait");
            let info = s.info(id).expect("info");
            assert_eq!(info.state, JobState::Failed, "pause {pause}");
            assert_eq!(info.exit_code, Some(4));
            assert_eq!(info.reason.as_deref(), Some("exited with status 4"));
            let recs = s
                .receive(&[id], ReceiveOptions::default())
                .expect("receive");
            assert_eq!(stream_of(&recs, Stream::Output), b"a\nb", "pause {pause}");
            assert_eq!(stream_of(&recs, Stream::Error), b"e", "pause {pause}");
            assert_eq!(stream_of(&recs, Stream::Warning), b"w", "pause {pause}");
        }
    }
}
