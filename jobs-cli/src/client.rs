//! The client side of the socket: connect, start the daemon when it is not
//! running (race-free), and exchange frames.
//!
//! Starting is serialized by an exclusive `flock` on a lock file in the
//! home: the first client to hold it starts the daemon and waits until the
//! socket answers; the others find the daemon running once they get the
//! lock. The daemon itself holds another lock for its whole life, so a
//! second daemon for the same home refuses to run even if started by hand.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::socket::{self, getsockopt, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};

use crate::exit::{self, Exit};
use jobs_protocol::home::{open_private, Access, Home};
use jobs_protocol::{
    check_env, read_frame, read_frame_into, write_frame, ErrorCode, FrameError, Op, Request,
    Response,
};

/// How long a client waits for a daemon it started to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a client waits, by default, to connect and for each answer
/// (`JOBCTL_CLIENT_TIMEOUT_MS` sets it).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// `JOBCTL_CLIENT_TIMEOUT_MS`, else [`CLIENT_TIMEOUT`].
fn client_timeout() -> Duration {
    std::env::var("JOBCTL_CLIENT_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(CLIENT_TIMEOUT, Duration::from_millis)
}

/// A connection to the session daemon.
///
/// Connecting, each write and each read wait at most the client timeout,
/// so a daemon that is stopped (SIGSTOP), wedged or buried under
/// connections ends the command with `the session daemon does not answer
/// (pid N)` instead of a silent hang. Requests that wait by design (`wait`,
/// `receive --wait`, `stop`, `remove --force`, `daemon stop`) go on waiting
/// past the timeout for as long as the daemon's process runs; they give up
/// once it is stopped or gone.
pub(crate) struct Client {
    stream: UnixStream,
    /// The daemon's pid, if known (the socket's peer, else the home's life lock).
    pid: Option<u32>,
    /// Whether the request in progress waits by design.
    patient: bool,
}

/// Connects to the home's socket within `timeout`; `None` if no daemon
/// listens there.
fn connect_socket(path: &Path, timeout: Duration) -> io::Result<Option<UnixStream>> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    let begin = Instant::now();
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(Errno::ENOENT | Errno::ECONNREFUSED) => return Ok(None),
            Err(Errno::EINTR) => {}
            // The daemon's backlog is full: it does not accept.
            Err(Errno::EAGAIN) if begin.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(Errno::EAGAIN) => return Err(ErrorKind::TimedOut.into()),
            Err(e) => return Err(e.into()),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(Some(stream))
}

/// The message for a daemon that does not answer.
fn not_answering(pid: Option<u32>) -> anyhow::Error {
    let message = match pid {
        Some(pid) => format!("the session daemon does not answer (pid {pid})"),
        None => "the session daemon does not answer".to_string(),
    };
    anyhow!(Exit::new(exit::FAILURE, message))
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn try_connect(home: &Home) -> Result<Option<Client>> {
    let stream = match connect_socket(&home.socket(), client_timeout()) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) if timed_out(&e) => return Err(not_answering(home.daemon_pid())),
        Err(e) => {
            return Err(anyhow!(e).context(format!(
                "cannot connect to the session daemon at {}",
                home.socket().display()
            )))
        }
    };
    let pid = check_peer(home, &stream)?;
    Ok(Some(Client {
        stream,
        pid: pid.or_else(|| home.daemon_pid()),
        patient: false,
    }))
}

/// Refuses a socket served by another user before a byte is sent: the
/// first request carries the caller's whole environment. Returns the
/// serving process's pid.
fn check_peer(home: &Home, stream: &UnixStream) -> Result<Option<u32>> {
    let cred = getsockopt(stream, sockopt::PeerCredentials).with_context(|| {
        format!(
            "cannot learn who serves the socket {}",
            home.socket().display()
        )
    })?;
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid() != me {
        bail!(
            "the socket {} is served by uid {} (pid {}), not by you (uid {me}): refusing to talk to it; remove it or set JOBCTL_HOME to a folder of your own",
            home.socket().display(),
            cred.uid(),
            cred.pid()
        );
    }
    Ok(u32::try_from(cred.pid()).ok().filter(|&p| p > 0))
}

/// Whether a process runs: it exists and is not stopped or a zombie.
fn runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesized command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('T' | 't' | 'Z' | 'X') | None)
}

/// The connection as a reader that waits for the daemon as [`Client`] says.
struct Answer<'a> {
    stream: &'a UnixStream,
    pid: Option<u32>,
    patient: bool,
    timed_out: bool,
}

impl Read for Answer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&mut &*self.stream).read(buf) {
                Err(e) if timed_out(&e) => {
                    if self.patient && self.pid.is_some_and(runs) {
                        continue;
                    }
                    self.timed_out = true;
                    return Err(e);
                }
                other => return other,
            }
        }
    }
}

/// Whether a request waits by design, for as long as its jobs take.
fn waits_by_design(op: &Op) -> bool {
    match op {
        Op::Wait(_) | Op::Stop(_) | Op::Shutdown => true,
        Op::Receive(r) => r.wait,
        Op::Events(e) => e.follow,
        Op::Remove(r) => r.force,
        _ => false,
    }
}

/// How long a client waits for a daemon that went away as it connected
/// to be gone for good.
const DYING_WAIT: Duration = Duration::from_secs(10);

/// Whether a failed exchange means the daemon went away before reading
/// the request: the socket was closed or reset under it.
fn going_away(e: &FrameError) -> bool {
    match e {
        FrameError::Closed => true,
        FrameError::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

fn lock_file(path: PathBuf) -> Result<File> {
    open_private(&path, Access::Write).with_context(|| format!("cannot open {}", path.display()))
}

impl Client {
    /// Connects to a running daemon; `None` if none runs.
    pub(crate) fn connect(home: &Home) -> Result<Option<Client>> {
        if !home.verify()? {
            return Ok(None);
        }
        try_connect(home)
    }

    /// The pid of the running daemon, asked over its socket; `None` if none
    /// runs.
    ///
    /// A daemon killed a moment ago can still hold its socket until its
    /// last thread is gone: the kernel accepts the connection and then
    /// resets it. That daemon counts as gone, once its life lock is free.
    pub(crate) fn live_pid(home: &Home) -> Result<Option<u32>> {
        let Some(c) = Client::connect(home)? else {
            return Ok(None);
        };
        let sent = write_frame(&mut &c.stream, &Request::new(Op::Status), &[]);
        match c.answer_or_gone(sent)? {
            Some(Response::Status { pid }) => Ok(Some(pid)),
            Some(other) => bail!("unexpected reply from the session daemon: {other:?}"),
            None => {
                wait_daemon_gone(home, DYING_WAIT)?;
                Ok(None)
            }
        }
    }

    /// The answer to a request whose write went as `sent`; an error answer
    /// becomes an [`Exit`] error. `None`: the daemon went away before it
    /// answered (the connection was closed or reset under the request).
    fn answer_or_gone(&self, sent: io::Result<()>) -> Result<Option<Response>> {
        let (read, timed_out) = match sent {
            Ok(()) => self.read_raw(),
            Err(e) => {
                let late = timed_out(&e);
                (Err(FrameError::from(e)), late)
            }
        };
        match read {
            Ok((Response::Error { kind, message }, _)) => Err(anyhow!(daemon_error(kind, message))),
            Ok((r, _)) => Ok(Some(r)),
            Err(e) if !timed_out && going_away(&e) => Ok(None),
            Err(e) => Err(self.read_failed(e, timed_out)),
        }
    }

    /// Connects, starting the daemon first if it is not running.
    pub(crate) fn connect_or_start(home: &Home, plugins: &[PathBuf]) -> Result<Client> {
        if let Some(c) = Client::connect(home)? {
            return Ok(c);
        }
        home.create()?;
        let file = lock_file(home.start_lock())?;
        let _guard = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow!(e).context("cannot lock the daemon's start lock"))?;
        if let Some(c) = Client::connect(home)? {
            return Ok(c);
        }
        start_daemon(home, plugins)
    }

    /// Sends a request. A `start`'s environment over the protocol's limits
    /// is refused here, before a byte is sent.
    pub(crate) fn send(&mut self, op: Op, blob: &[u8]) -> Result<()> {
        if let Op::Start(start) | Op::StartStreamed(start) = &op {
            let env = start.parts(blob).map_err(|e| anyhow!(e))?.env;
            check_env(env).map_err(|e| anyhow!(Exit::new(exit::FAILURE, e.to_string())))?;
        }
        if !matches!(op, Op::Ack { .. }) {
            // An ack goes on with its receive's patience.
            self.patient = waits_by_design(&op);
        }
        match write_frame(&mut self.stream, &Request::new(op), blob) {
            Ok(()) => Ok(()),
            Err(e) if timed_out(&e) => Err(not_answering(self.pid)),
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                // The daemon refused the frame; it says why before closing.
                match read_frame::<Response>(&mut self.stream) {
                    Ok((Response::Error { kind, message }, _)) => {
                        Err(anyhow!(daemon_error(kind, message)))
                    }
                    _ => Err(anyhow!(e).context("cannot send to the session daemon")),
                }
            }
            Err(e) => Err(anyhow!(e).context("cannot send to the session daemon")),
        }
    }

    fn answer(&self) -> Answer<'_> {
        Answer {
            stream: &self.stream,
            pid: self.pid,
            patient: self.patient,
            timed_out: false,
        }
    }

    /// What a failed read means for the user.
    fn read_failed(&self, e: FrameError, timed_out: bool) -> anyhow::Error {
        match e {
            _ if timed_out => not_answering(self.pid),
            FrameError::Closed => anyhow!("the session daemon closed the connection"),
            e => anyhow!(e).context("cannot read the session daemon's reply"),
        }
    }

    /// Reads a frame as it comes, and whether the read timed out.
    fn read_raw(&self) -> (Result<(Response, Vec<u8>), FrameError>, bool) {
        let mut answer = self.answer();
        let read = read_frame::<Response>(&mut answer);
        (read, answer.timed_out)
    }

    /// Reads a response; an error response becomes an [`Exit`] error.
    pub(crate) fn recv(&mut self) -> Result<(Response, Vec<u8>)> {
        let (read, timed_out) = self.read_raw();
        match read {
            Ok((Response::Error { kind, message }, _)) => Err(anyhow!(daemon_error(kind, message))),
            Ok(r) => Ok(r),
            Err(e) => Err(self.read_failed(e, timed_out)),
        }
    }

    /// Reads a response whose blob goes into `blob` (a receive reads many
    /// pages through one buffer); an error response becomes an [`Exit`] error.
    pub(crate) fn recv_into(&mut self, blob: &mut Vec<u8>) -> Result<Response> {
        let mut answer = self.answer();
        let read = read_frame_into::<Response>(&mut answer, blob);
        let timed_out = answer.timed_out;
        match read {
            Ok(Response::Error { kind, message }) => Err(anyhow!(daemon_error(kind, message))),
            Ok(r) => Ok(r),
            Err(e) => Err(self.read_failed(e, timed_out)),
        }
    }

    /// Sends a request and reads its response.
    pub(crate) fn call(&mut self, op: Op) -> Result<Response> {
        self.send(op, &[])?;
        Ok(self.recv()?.0)
    }

    /// Asks the daemon of `home` a question that changes nothing, such as
    /// `list` or `wait`, or a request that, made twice, does what it did
    /// once (`stop`). A daemon that goes away before it answers (killed
    /// as it was asked: the kernel accepted the connection, then reset it)
    /// is waited gone, and the question is asked again of a new daemon,
    /// once.
    pub(crate) fn ask(mut self, home: &Home, op: impl Fn() -> Op) -> Result<Response> {
        self.send(op(), &[])?;
        if let Some(r) = self.answer_or_gone(Ok(()))? {
            return Ok(r);
        }
        drop(self);
        wait_daemon_gone(home, DYING_WAIT)?;
        Client::connect_or_start(home, &[])?.call(op())
    }
}

/// The exit code a daemon's error kind stands for.
pub(crate) fn daemon_error(kind: ErrorCode, message: String) -> Exit {
    let code = match kind {
        ErrorCode::NoSuchJob | ErrorCode::Usage => exit::USAGE,
        ErrorCode::Failed | ErrorCode::Protocol => exit::FAILURE,
    };
    Exit::new(code, message)
}

/// The daemon executable: `JOBCTL_DAEMON`, else `jobctl-daemon` next to
/// this executable.
fn daemon_exe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("JOBCTL_DAEMON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().context("cannot find the jobctl executable")?;
    let exe = me.with_file_name("jobctl-daemon");
    if !exe.exists() {
        bail!(
            "cannot find the session daemon {} (build it with `cargo build -p jobs-cli`, or set JOBCTL_DAEMON)",
            exe.display()
        );
    }
    Ok(exe)
}

fn start_daemon(home: &Home, plugins: &[PathBuf]) -> Result<Client> {
    let exe = daemon_exe()?;
    let log = open_private(&home.log(), Access::Append)
        .with_context(|| format!("cannot open {}", home.log().display()))?;
    // The daemon's last words at start are what it writes to this log past
    // its current end.
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = Command::new(exe);
    cmd.arg("--home").arg(home.dir());
    for p in plugins {
        cmd.arg("--plugin").arg(p);
    }
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let mut child = cmd.spawn().context("cannot start the session daemon")?;
    let begin = Instant::now();
    let mut pause = Duration::from_micros(500);
    loop {
        if let Some(client) = try_connect(home)? {
            return Ok(client);
        }
        if let Some(status) = child
            .try_wait()
            .context("cannot watch the session daemon")?
        {
            let log = home.log();
            match last_words(&log, log_start) {
                Some(reason) => bail!(
                    "the session daemon could not start: {reason} (see {})",
                    log.display()
                ),
                None => bail!(
                    "the session daemon exited at start ({status}); see {}",
                    log.display()
                ),
            }
        }
        if begin.elapsed() > START_TIMEOUT {
            bail!(
                "the session daemon did not answer within {}s; see {}",
                START_TIMEOUT.as_secs(),
                home.log().display()
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The reason a daemon gave for exiting at start: its last
/// `jobctl-daemon: ...` line in the log written past `from`.
fn last_words(log: &Path, from: u64) -> Option<String> {
    let mut file = File::open(log).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut text = Vec::new();
    file.take(64 * 1024).read_to_end(&mut text).ok()?;
    String::from_utf8_lossy(&text)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("jobctl-daemon: "))
        .map(str::to_owned)
}

/// Waits until the daemon of `home` is gone: its life lock is free.
pub(crate) fn wait_daemon_gone(home: &Home, timeout: Duration) -> Result<()> {
    let begin = Instant::now();
    loop {
        let file = lock_file(home.daemon_lock())?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_) => return Ok(()),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {}
            Err((_, e)) => {
                return Err(anyhow!(io::Error::from(e)).context("cannot check the daemon lock"))
            }
        }
        if begin.elapsed() > timeout {
            bail!(
                "the session daemon did not exit within {}s",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
