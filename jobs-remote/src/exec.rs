//! Running the command on a connected session: stream stdout and stderr as
//! records, keep the connection alive and watched, stop the remote process
//! group for real, and read the exit status in the right order.
//!
//! The session is driven by this one thread, non-blocking, waiting on the
//! socket with `poll` so a stop request or a silent peer is noticed within
//! a tick.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use jobs_core::{shell_quote, JobContext, JobFailure, Record, Stream};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use ssh2::{BlockDirections, Channel, Session};

use crate::config::Resolved;
use crate::connect::{close, Connected};
use crate::error::{ErrorKind, HostErr, RemoteError};

/// The side line the wrapper prints first on stdout: the remote shell's
/// pid, which is its process group (sshd makes each session's command a
/// session leader).
const PGID_MARKER: &str = "__jobs_remote_pgid__=";
/// How much leading stdout may come before the marker (a chatty rc file).
const MARKER_SEARCH_LIMIT: usize = 64 * 1024;
/// The poll tick: how soon a stop request is seen.
const TICK: Duration = Duration::from_millis(50);
/// At most this much is read from one stream before the loop looks at
/// the other stream, stop requests and keepalives again.
const PUMP_BUDGET: usize = 1024 * 1024;
/// How long to wait for the channel to end after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(3);

/// Wrapped commands longer than this travel on stdin: an exec request must
/// fit in one SSH packet (32 KiB on OpenSSH), and libssh2 fails beyond it.
const MAX_INLINE_COMMAND: usize = 16 * 1024;

/// The line sent to the remote shell: report the process group, then run
/// the user's line in that same shell.
pub(crate) fn wrap(command: &str) -> String {
    format!(
        "printf '{PGID_MARKER}%s\\n' \"$$\"; eval {}",
        shell_quote(command)
    )
}

/// The wrapper for a long command, which is then written to stdin.
fn wrap_stdin() -> String {
    format!("printf '{PGID_MARKER}%s\\n' \"$$\"; eval \"$(cat)\"")
}

/// The wrapper for a long command of `len` bytes written to stdin ahead of
/// the job's input: exactly those bytes are read (`dd` one byte at a
/// time, as a pipe allows no more without reading past them), the rest of
/// stdin is the command's.
fn wrap_stdin_then_input(len: usize) -> String {
    format!("printf '{PGID_MARKER}%s\\n' \"$$\"; eval \"$(dd bs=1 count={len} 2>/dev/null)\"")
}

/// The job's input on its way to the command's stdin, written as the
/// channel's window allows, between reads, so that a command which
/// answers while it reads (`cat`) never waits on us, nor we on it.
struct Feed<'a> {
    data: &'a [u8],
    sent: usize,
    /// End of file sent: nothing more to do.
    done: bool,
}

impl Feed<'_> {
    /// Writes what the channel takes now, then the end of file once all
    /// is written. Whether anything went. A write the channel refuses
    /// ends the feed: the command closed its end, or the connection is
    /// lost, which the reads report.
    fn pump(&mut self, channel: &mut Channel) -> bool {
        let mut moved = false;
        while !self.done && self.sent < self.data.len() {
            let end = self.data.len().min(self.sent + 32 * 1024);
            match std::io::Write::write(channel, &self.data[self.sent..end]) {
                // The window is full: more once the peer adjusts it.
                Ok(0) => return moved,
                Ok(n) => {
                    self.sent += n;
                    moved = true;
                }
                Err(e) if is_would_block(&e) => return moved,
                Err(_) => self.done = true,
            }
        }
        if !self.done {
            match channel.send_eof() {
                Ok(()) => {
                    self.done = true;
                    moved = true;
                }
                Err(e) if ssh_would_block(&e) => {}
                Err(_) => self.done = true,
            }
        }
        moved
    }
}

pub(crate) fn is_would_block(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
}

pub(crate) fn ssh_would_block(e: &ssh2::Error) -> bool {
    // LIBSSH2_ERROR_EAGAIN
    e.code() == ssh2::ErrorCode::Session(-37)
}

/// Splits the wrapper's marker line off the start of stdout.
struct StdoutFilter {
    pgid: Option<i64>,
    searching: bool,
    pending: Vec<u8>,
}

impl StdoutFilter {
    fn new() -> Self {
        StdoutFilter {
            pgid: None,
            searching: true,
            pending: Vec::new(),
        }
    }

    /// Takes a chunk; returns the bytes that are the command's output.
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        if !self.searching {
            return chunk.to_vec();
        }
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line);
            if let Some(pid) = text.trim_end().strip_prefix(PGID_MARKER) {
                self.pgid = pid.parse().ok().filter(|&p: &i64| p > 1);
                self.searching = false;
                out.append(&mut self.pending);
                return out;
            }
            out.extend_from_slice(&line);
        }
        if self.pending.len() > MARKER_SEARCH_LIMIT {
            self.searching = false;
            out.append(&mut self.pending);
        }
        out
    }

    /// What is left when the stream ends.
    fn finish(&mut self) -> Vec<u8> {
        self.searching = false;
        std::mem::take(&mut self.pending)
    }
}

/// Where a stop stands.
enum StopPhase {
    None,
    /// Seen at this time; SIGTERM sent if the group was known.
    Requested {
        at: Instant,
        term_sent: bool,
    },
    /// SIGKILL sent (or nothing more can be done) at this time.
    Killed {
        at: Instant,
    },
}

struct Runner<'a> {
    session: &'a Session,
    socket: &'a std::net::TcpStream,
    ctx: &'a JobContext,
    he: HostErr,
    last_rx: Instant,
    dead_after: Duration,
    keepalive: Duration,
    buf: Vec<u8>,
}

impl Runner<'_> {
    fn lost(&self, cause: impl std::fmt::Display) -> RemoteError {
        self.he.err(
            ErrorKind::ConnectionLost,
            format!("connection lost: {cause}"),
        )
    }

    /// Reads what is there on one stream, up to a budget so a fast
    /// producer cannot starve the stop and keepalive checks. Returns
    /// whether anything came and whether the stream ended.
    fn pump(
        &mut self,
        channel: &mut Channel,
        stream_id: i32,
        mut filter: Option<&mut StdoutFilter>,
    ) -> Result<(bool, bool), RemoteError> {
        let mut got = false;
        let mut budget = PUMP_BUDGET;
        loop {
            if budget == 0 {
                return Ok((got, false));
            }
            let r = channel.stream(stream_id).read(&mut self.buf);
            match r {
                Ok(0) => return Ok((got, true)),
                Ok(n) => {
                    got = true;
                    budget = budget.saturating_sub(n);
                    let chunk = &self.buf[..n];
                    let data = match filter.as_deref_mut() {
                        Some(f) => f.feed(chunk),
                        None => chunk.to_vec(),
                    };
                    if !data.is_empty() {
                        let stream = if stream_id == 0 {
                            Stream::Output
                        } else {
                            Stream::Error
                        };
                        self.ctx.emit(Record::bytes(stream, data));
                    }
                }
                Err(e) if is_would_block(&e) => return Ok((got, false)),
                Err(e) => return Err(self.lost(e)),
            }
        }
    }

    /// Sends a keepalive when due, and fails when the server has been
    /// silent too long; then waits a tick on the socket.
    fn idle(&mut self, limit: Duration) -> Result<(), RemoteError> {
        match self.session.keepalive_send() {
            Ok(_) => {}
            Err(e) if ssh_would_block(&e) => {}
            Err(e) => return Err(self.lost(e.message())),
        }
        let silent = self.last_rx.elapsed();
        if silent > self.dead_after {
            return Err(self.lost(format!(
                "no answer from the server for {}s (keepalive every {}s)",
                silent.as_secs(),
                self.keepalive.as_secs_f64()
            )));
        }
        let mut flags = PollFlags::POLLIN;
        if matches!(
            self.session.block_directions(),
            BlockDirections::Outbound | BlockDirections::Both
        ) {
            flags |= PollFlags::POLLOUT;
        }
        let mut fds = [PollFd::new(self.socket.as_fd(), flags)];
        let wait = u16::try_from(limit.min(TICK).as_millis()).unwrap_or(50);
        match poll(&mut fds, PollTimeout::from(wait)) {
            Ok(n) if n > 0 => {
                if fds[0]
                    .revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
                {
                    self.last_rx = Instant::now();
                }
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(self.lost(e)),
        }
        Ok(())
    }

    /// Runs `kill -SIG -PGID` over a second channel, blocking briefly. No
    /// `--`: dash, `/bin/sh` on Debian, takes it for a pid ("Illegal
    /// number"), and a negative pid after a signal is a group in every
    /// POSIX shell.
    fn signal_group(&self, pgid: i64, sig: &str) {
        self.session.set_blocking(true);
        self.session.set_timeout(5_000);
        let run = || -> Result<(), ssh2::Error> {
            let mut ch = self.session.channel_session()?;
            ch.exec(&format!(
                "kill -{sig} -{pgid} 2>/dev/null || kill -{sig} {pgid} 2>/dev/null; true"
            ))?;
            ch.send_eof()?;
            let mut sink = Vec::new();
            let _ = ch.read_to_end(&mut sink);
            let _ = ch.stderr().read_to_end(&mut sink);
            ch.wait_close()
        };
        if let Err(e) = run() {
            self.ctx.warning(format!(
                "host {}: could not send SIG{sig}: {}",
                self.he.host,
                e.message()
            ));
        }
        self.session.set_timeout(0);
        self.session.set_blocking(false);
    }
}

/// Runs the started command on the connected host and maps the outcome to
/// the job's. Gives the connection back when it may serve another command:
/// the command ended on its own (not stopped), both streams reached their
/// end and the channel closed; otherwise closes it.
pub(crate) fn run(
    conn: Connected,
    channel: Channel,
    input: Option<&[u8]>,
    r: &Resolved,
    ctx: &JobContext,
    stop_grace: Duration,
) -> (Result<(), JobFailure>, Option<Connected>) {
    let mut end = Ending::default();
    let result = drive(&conn, channel, input, r, ctx, stop_grace, &mut end);
    if end.reusable && end.closed && !ctx.stop_requested() {
        return (result, Some(conn));
    }
    // Freeing a session closes its open channels and, in blocking mode,
    // waits for the peer's answer: bound that wait, and when the channel
    // did not close properly (peer gone, stop cut it short) shut the socket
    // first so nothing waits on a dead peer.
    close(conn, end.closed);
    (result, None)
}

/// How a command's channel ended, for whether its connection may serve
/// another command.
#[derive(Default)]
struct Ending {
    /// The channel closed properly.
    closed: bool,
    /// The command ended on its own with both streams at their end.
    reusable: bool,
}

fn drive(
    conn: &Connected,
    mut channel: Channel,
    input: Option<&[u8]>,
    r: &Resolved,
    ctx: &JobContext,
    stop_grace: Duration,
    end: &mut Ending,
) -> Result<(), JobFailure> {
    let he = HostErr {
        host: r.written.clone(),
    };
    let session = &conn.session;
    session.set_timeout(0);
    session.set_keepalive(
        true,
        u32::try_from(r.keepalive_interval.as_secs())
            .unwrap_or(u32::MAX)
            .max(1),
    );
    session.set_blocking(false);
    let mut runner = Runner {
        session,
        socket: &conn.socket,
        ctx,
        he: he.clone(),
        last_rx: Instant::now(),
        // keepalive_send counts whole seconds: allow one more.
        dead_after: r.keepalive_interval * r.keepalive_count + Duration::from_secs(1),
        keepalive: r.keepalive_interval,
        buf: vec![0; 64 * 1024],
    };
    let mut filter = StdoutFilter::new();
    // Without input the end of file went with the command (`start`).
    let mut feed = input.map(|data| Feed {
        data,
        sent: 0,
        done: false,
    });
    let mut stop = StopPhase::None;
    // The pause the remote group has (SIGSTOP sent, not yet SIGCONT).
    let mut paused = false;
    let mut out_eof = false;
    let mut err_eof = false;
    let result: Result<(), RemoteError> = loop {
        let (got_out, e1) = match runner.pump(&mut channel, 0, Some(&mut filter)) {
            Ok(x) => x,
            Err(e) => break Err(e),
        };
        let (got_err, e2) = match runner.pump(&mut channel, 1, None) {
            Ok(x) => x,
            Err(e) => break Err(e),
        };
        out_eof |= e1;
        err_eof |= e2;
        if got_out || got_err {
            runner.last_rx = Instant::now();
        }
        let fed = feed.as_mut().is_some_and(|f| f.pump(&mut channel));
        if (out_eof && err_eof) || channel.eof() {
            // A last pass: the eof may have come with data behind it.
            if let Err(e) = runner.pump(&mut channel, 0, Some(&mut filter)) {
                break Err(e);
            }
            if let Err(e) = runner.pump(&mut channel, 1, None) {
                break Err(e);
            }
            break Ok(());
        }
        if ctx.stop_requested() {
            stop = match stop {
                StopPhase::None => StopPhase::Requested {
                    at: Instant::now(),
                    term_sent: false,
                },
                s => s,
            };
            match &mut stop {
                StopPhase::Requested { at, term_sent } => {
                    // `jobctl stop --signal --grace`, else TERM and ours.
                    let how = ctx.stop_options();
                    if let (false, Some(pgid)) = (*term_sent, filter.pgid) {
                        let first = how.signal.map_or("TERM".into(), jobs_core::signal_word);
                        runner.signal_group(pgid, &first);
                        *term_sent = true;
                    }
                    if at.elapsed() >= how.grace.unwrap_or(stop_grace) {
                        if let Some(pgid) = filter.pgid {
                            runner.signal_group(pgid, "KILL");
                        }
                        stop = StopPhase::Killed { at: Instant::now() };
                    }
                }
                StopPhase::Killed { at } => {
                    if at.elapsed() >= KILL_WAIT {
                        let _ = channel.close();
                        break Ok(());
                    }
                }
                StopPhase::None => {}
            }
        }
        // A suspend or resume (a stop lifts the pause: SIGCONT after the
        // SIGTERM above, so the group acts on it).
        let want = ctx.stop_token().is_paused();
        if want != paused {
            if let Some(pgid) = filter.pgid {
                runner.signal_group(pgid, if want { "STOP" } else { "CONT" });
                paused = want;
                ctx.stop_token().set_applied(want);
            }
        }
        if got_out || got_err || fed {
            continue;
        }
        if let Err(e) = runner.idle(TICK) {
            break Err(e);
        }
    };
    let rest = filter.finish();
    if !rest.is_empty() {
        ctx.emit(Record::bytes(Stream::Output, rest));
    }
    let stopped = ctx.stop_requested();
    if let Err(e) = result {
        if stopped {
            return Ok(());
        }
        return Err(e.to_failure());
    }
    if stopped && filter.pgid.is_none() {
        return Err(JobFailure::new(format!(
            "host {}: stopped before the remote command reported its process group; it may still run",
            r.written
        )));
    }
    // Teardown in order: eof was sent (at start, or after the input), both
    // streams are drained;
    // now wait for the close, and only then read the exit status.
    let deadline = Instant::now() + r.connect_timeout.max(Duration::from_secs(5));
    loop {
        match channel.wait_close() {
            Ok(()) => {
                end.closed = true;
                break;
            }
            Err(e) if ssh_would_block(&e) => {
                if Instant::now() > deadline {
                    if stopped {
                        return Ok(());
                    }
                    return Err(runner.lost("the channel did not close").to_failure());
                }
                // Keep reading so the close can arrive (and late data drains).
                let _ = runner.pump(&mut channel, 0, None);
                let _ = runner.pump(&mut channel, 1, None);
                if let Err(e) = runner.idle(TICK) {
                    return if stopped { Ok(()) } else { Err(e.to_failure()) };
                }
            }
            Err(e) if stopped => {
                let _ = e;
                return Ok(());
            }
            Err(e) => return Err(runner.lost(e.message()).to_failure()),
        }
    }
    if stopped {
        return Ok(());
    }
    let signal = channel.exit_signal().ok().and_then(|s| s.exit_signal);
    if let Some(sig) = signal {
        let name = if sig.starts_with("SIG") {
            sig
        } else {
            format!("SIG{sig}")
        };
        // Worded as for process jobs: number (as on this side) and name.
        let failure = match name.parse::<nix::sys::signal::Signal>() {
            Ok(s) => JobFailure::signaled(s as i32),
            // A name this side does not know: only the name to show.
            Err(_) => JobFailure::new(format!("killed by signal {name}")),
        };
        end.reusable = channel.eof();
        return Err(failure);
    }
    let status = channel
        .exit_status()
        .map_err(|e| runner.lost(e.message()).to_failure())?;
    ctx.set_exit_code(status);
    end.reusable = channel.eof();
    if status == 0 {
        Ok(())
    } else {
        Err(JobFailure::exited(status))
    }
}

fn channel_err(he: &HostErr, what: &str, e: ssh2::Error) -> RemoteError {
    he.err(
        ErrorKind::Channel,
        format!("cannot {what}: {}", e.message()),
    )
}

/// Opens a session channel (blocking, under the connect timeout set by
/// `connect` or `prepare`). Nothing has run remotely when this fails, so a
/// caller may try again on another connection.
pub(crate) fn open_channel(session: &Session, he: &HostErr) -> Result<Channel, RemoteError> {
    session
        .channel_session()
        .map_err(|e| channel_err(he, "open a channel", e))
}

/// Starts the wrapped command on an open channel. Without `input` the
/// command gets no stdin (end of file at once); with it, stdin stays open
/// for [`run`] to write the input to.
pub(crate) fn start(
    mut channel: Channel,
    command: &str,
    input: bool,
    he: &HostErr,
) -> Result<Channel, RemoteError> {
    let fail = |what: &str, e: ssh2::Error| channel_err(he, what, e);
    let wrapped = wrap(command);
    if wrapped.len() <= MAX_INLINE_COMMAND {
        channel
            .exec(&wrapped)
            .map_err(|e| fail("start the command", e))?;
    } else {
        let wrapper = if input {
            wrap_stdin_then_input(command.len())
        } else {
            wrap_stdin()
        };
        channel
            .exec(&wrapper)
            .map_err(|e| fail("start the command", e))?;
        std::io::Write::write_all(&mut channel, command.as_bytes())
            .map_err(|e| he.err(ErrorKind::Channel, format!("cannot send the command: {e}")))?;
    }
    if !input {
        channel.send_eof().map_err(|e| fail("close stdin", e))?;
    }
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert!(wrap("echo 'a'").ends_with(r"eval 'echo '\''a'\'''"));
    }

    #[test]
    fn marker_is_split_off_and_output_kept_exact() {
        let mut f = StdoutFilter::new();
        let mut out = f.feed(b"rc noise\n__jobs_remote_");
        out.extend(f.feed(b"pgid__=4242\nbin\0ary"));
        out.extend(f.feed(b"\xff tail"));
        out.extend(f.finish());
        assert_eq!(f.pgid, Some(4242));
        assert_eq!(out, b"rc noise\nbin\0ary\xff tail");
        let mut g = StdoutFilter::new();
        assert_eq!(g.feed(b"no newline"), b"");
        assert_eq!(g.finish(), b"no newline");
        assert_eq!(g.pgid, None);
    }
}
