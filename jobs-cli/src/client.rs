//! The client side of the socket: connect, start the daemon when it is not
//! running (race-free), and exchange frames.
//!
//! Starting is serialized by an exclusive `flock` on a lock file in the
//! home: the first client to hold it starts the daemon and waits until the
//! socket answers; the others find the daemon running once they get the
//! lock. The daemon itself holds another lock for its whole life, so a
//! second daemon for the same home refuses to run even if started by hand.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::socket::{getsockopt, sockopt};

use crate::exit::{self, Exit};
use jobs_protocol::home::{open_private, Access, Home};
use jobs_protocol::{
    check_env, read_frame, read_frame_into, write_frame, ErrorCode, FrameError, Op, Request,
    Response,
};

/// How long a client waits for a daemon it started to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection to the session daemon.
pub(crate) struct Client {
    stream: UnixStream,
}

fn try_connect(home: &Home) -> Result<Option<UnixStream>> {
    let stream = match UnixStream::connect(home.socket()) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(None)
        }
        Err(e) => {
            return Err(anyhow!(e).context(format!(
                "cannot connect to the session daemon at {}",
                home.socket().display()
            )))
        }
    };
    check_peer(home, &stream)?;
    Ok(Some(stream))
}

/// Refuses a socket served by another user before a byte is sent: the
/// first request carries the caller's whole environment.
fn check_peer(home: &Home, stream: &UnixStream) -> Result<()> {
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
    Ok(())
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
        Ok(try_connect(home)?.map(|stream| Client { stream }))
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
        if matches!(op, Op::Start(_)) {
            check_env(blob).map_err(|e| anyhow!(Exit::new(exit::FAILURE, e.to_string())))?;
        }
        match write_frame(&mut self.stream, &Request::new(op), blob) {
            Ok(()) => Ok(()),
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

    /// Reads a response; an error response becomes an [`Exit`] error.
    pub(crate) fn recv(&mut self) -> Result<(Response, Vec<u8>)> {
        match read_frame::<Response>(&mut self.stream) {
            Ok((Response::Error { kind, message }, _)) => Err(anyhow!(daemon_error(kind, message))),
            Ok(r) => Ok(r),
            Err(FrameError::Closed) => bail!("the session daemon closed the connection"),
            Err(e) => Err(anyhow!(e).context("cannot read the session daemon's reply")),
        }
    }

    /// Reads a response whose blob goes into `blob` (a receive reads many
    /// pages through one buffer); an error response becomes an [`Exit`] error.
    pub(crate) fn recv_into(&mut self, blob: &mut Vec<u8>) -> Result<Response> {
        match read_frame_into::<Response>(&mut self.stream, blob) {
            Ok(Response::Error { kind, message }) => Err(anyhow!(daemon_error(kind, message))),
            Ok(r) => Ok(r),
            Err(FrameError::Closed) => bail!("the session daemon closed the connection"),
            Err(e) => Err(anyhow!(e).context("cannot read the session daemon's reply")),
        }
    }

    /// Sends a request and reads its response.
    pub(crate) fn call(&mut self, op: Op) -> Result<Response> {
        self.send(op, &[])?;
        Ok(self.recv()?.0)
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
        if let Some(stream) = try_connect(home)? {
            return Ok(Client { stream });
        }
        if let Some(status) = child
            .try_wait()
            .context("cannot watch the session daemon")?
        {
            bail!(
                "the session daemon exited at start ({status}); see {}",
                home.log().display()
            );
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
