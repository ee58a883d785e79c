//! A job bound to its session: pipes for stdout, stderr and records, its
//! group registered with the watcher, stop by SIGTERM then SIGKILL.

use std::future::Future;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use jobs_core::{JobContext, JobFailure, Record, Stream};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::pipe;
use tokio::process::Child;
use tokio::runtime::Handle;

use crate::group::{group_alive, signal_group, sleep, terminate_group, Ending};
use crate::lent::Lent;
use crate::records::{failure_reason, LineDecoder};
use crate::spawn::{check_cwd, spawn, Launch};
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
    // Made non-blocking at birth (both ends), the writer's end made blocking
    // again for the child: two calls fewer than tokio's checked conversion.
    let (rec_read, rec_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .and_then(|(r, w)| {
            nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))?;
            Ok((r, w))
        })
        .map_err(|e| JobFailure::new(format!("cannot create the records pipe: {e}")))?;
    let records = {
        let _g = io.enter();
        pipe::Receiver::from_owned_fd_unchecked(rec_read)
    }
    .map_err(|e| JobFailure::new(format!("cannot watch the records pipe: {e}")))?;
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
    let mut child = spawn(&io, &spec, launch)?;
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
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();

    let ctx = Arc::new(ctx);
    let failure_slot = Arc::new(Mutex::new(None::<String>));
    let traffic = Arc::new(Traffic::default());
    let pumps: Pumps = Box::pin({
        let ctx = Arc::clone(&ctx);
        let failure = Arc::clone(&failure_slot);
        let traffic = Arc::clone(&traffic);
        async move {
            tokio::join!(
                pump_bytes(stdout, Stream::Output, Arc::clone(&ctx), &traffic),
                pump_bytes(stderr, Stream::Error, Arc::clone(&ctx), &traffic),
                pump_records(records, ctx, failure),
            );
            traffic.closed.store(true, Ordering::Release);
        }
    });
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
        let exited = tokio::select! {
            st = exit_of(&mut child, &traffic) => Some(st),
            _ = ctx.stopped() => None,
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
    child: &'a mut Child,
    traffic: &'a Traffic,
) -> impl Future<Output = std::io::Result<ExitStatus>> + 'a {
    std::future::poll_fn(move |cx| {
        {
            let wait = std::pin::pin!(child.wait());
            if let Poll::Ready(st) = wait.poll(cx) {
                return Poll::Ready(st);
            }
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
    mut reader: pipe::Receiver,
    ctx: Arc<JobContext>,
    failure: Arc<Mutex<Option<String>>>,
) {
    let mut decoder = LineDecoder::default();
    // Small until a read fills it: most jobs send few records, or none.
    let mut buf = vec![0u8; FIRST_READ];
    let mut emit = |r: Record| {
        // A failure record is the job's own word on why it fails: it
        // becomes the reason, not a record received twice.
        match failure_reason(&r) {
            Some(reason) => {
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
            }
            None => {
                ctx.emit(r);
            }
        }
    };
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
