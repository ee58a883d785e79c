//! The channel-level steps of a detached job: one operation of the remote
//! supervisor (`supervisor.sh`, sent with every command, so the host needs
//! nothing installed), and the stream of the job's files as they grow.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use jobs_core::{shell_quote, JobContext, Record, Stream};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use ssh2::{BlockDirections, Channel, Session};

use crate::connect::Connected;
use crate::exec::{is_would_block, ssh_would_block};

/// The supervisor: POSIX sh, run as `sh -c SCRIPT jobctl OP ID ARGS...`.
const SUPERVISOR: &str = include_str!("supervisor.sh");

/// The supervisor's exit status when the job's folder is gone.
pub(crate) const GONE: i32 = 86;

/// The poll tick of the stream: how soon a stop request is seen.
const TICK: Duration = Duration::from_millis(50);
/// At most this much of one stream before the loop looks around again.
const BUDGET: usize = 1024 * 1024;

/// What an operation answered.
pub(crate) struct Answer {
    /// The supervisor's exit status.
    pub(crate) status: i32,
    /// What it wrote on stdout.
    pub(crate) stdout: Vec<u8>,
    /// What it wrote on stderr.
    pub(crate) stderr: Vec<u8>,
}

/// The command line that runs one operation of the supervisor.
fn op_line(op: &str, id: &str, args: &[String]) -> String {
    let mut line = format!("sh -c {} jobctl {op} {}", shell_quote(SUPERVISOR), id);
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    line
}

/// Runs one operation to its end, blocking, each step bounded by `timeout`;
/// `stdin` is written to it first. An error says why it could not run.
pub(crate) fn run_op(
    session: &Session,
    op: &str,
    id: &str,
    args: &[String],
    stdin: &[u8],
    timeout: Duration,
) -> Result<Answer, String> {
    let ssh = |e: ssh2::Error| e.message().to_string();
    let io = |e: std::io::Error| e.to_string();
    session.set_blocking(true);
    session.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    let mut ch = session.channel_session().map_err(ssh)?;
    ch.exec(&op_line(op, id, args)).map_err(ssh)?;
    if !stdin.is_empty() {
        ch.write_all(stdin).map_err(io)?;
    }
    ch.send_eof().map_err(ssh)?;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    ch.read_to_end(&mut stdout).map_err(io)?;
    ch.stderr().read_to_end(&mut stderr).map_err(io)?;
    ch.wait_close().map_err(ssh)?;
    let status = ch.exit_status().map_err(ssh)?;
    Ok(Answer {
        status,
        stdout,
        stderr,
    })
}

/// How a stream of the job's files ended.
pub(crate) enum TailEnd {
    /// The status file is there and everything before it was read.
    Done,
    /// The job's folder is gone.
    Gone,
    /// A stop was requested; the connection still serves.
    Stop,
    /// The connection was lost (or never served): why.
    Lost(String),
}

/// What the stream needs to know besides the connection.
pub(crate) struct TailParams<'a> {
    /// The job's instance id (its folder's name).
    pub(crate) id: &'a str,
    /// How often to send a keepalive.
    pub(crate) keepalive: Duration,
    /// Silence after which the server counts as gone.
    pub(crate) dead_after: Duration,
    /// Bounds opening the channel.
    pub(crate) timeout: Duration,
}

/// Streams the job's stdout and stderr files from `offsets` (bytes already
/// stored) as Output and Error records. Each chunk is stored together with
/// the offsets it reaches (`checkpoint` makes the bytes), and `offsets`
/// moves only once the store took both: every byte reaches the job once.
pub(crate) fn tail(
    conn: &Connected,
    p: &TailParams<'_>,
    offsets: &mut [u64; 2],
    paused: &mut Option<bool>,
    ctx: &JobContext,
    checkpoint: &dyn Fn([u64; 2]) -> Vec<u8>,
) -> TailEnd {
    let session = &conn.session;
    session.set_blocking(true);
    session.set_timeout(u32::try_from(p.timeout.as_millis()).unwrap_or(u32::MAX));
    let args = [offsets[0].to_string(), offsets[1].to_string()];
    let opened = session.channel_session().and_then(|mut ch| {
        ch.exec(&op_line("tail", p.id, &args))?;
        ch.send_eof()?;
        Ok(ch)
    });
    let mut ch = match opened {
        Ok(ch) => ch,
        Err(e) => return TailEnd::Lost(e.message().to_string()),
    };
    session.set_timeout(0);
    session.set_keepalive(
        true,
        u32::try_from(p.keepalive.as_secs())
            .unwrap_or(u32::MAX)
            .max(1),
    );
    session.set_blocking(false);
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_rx = Instant::now();
    let end = loop {
        let mut got = false;
        let mut eof = [false; 2];
        for (i, done) in eof.iter_mut().enumerate() {
            match pump(&mut ch, i, &mut buf, offsets, ctx, checkpoint) {
                Ok((g, e)) => {
                    got |= g;
                    *done = e;
                }
                Err(why) => return TailEnd::Lost(why),
            }
        }
        if got {
            last_rx = Instant::now();
        }
        if (eof[0] && eof[1]) || ch.eof() {
            for i in 0..2 {
                if let Err(why) = pump(&mut ch, i, &mut buf, offsets, ctx, checkpoint) {
                    return TailEnd::Lost(why);
                }
            }
            break None;
        }
        if ctx.stop_requested() {
            break Some(TailEnd::Stop);
        }
        // A suspend or resume: STOP or CONT to the job's group, over a
        // second channel.
        let want = ctx.stop_token().is_paused();
        if *paused != Some(want) {
            session.set_blocking(true);
            let sent = signal(session, p, want);
            session.set_timeout(0);
            session.set_blocking(false);
            if let Err(why) = sent {
                return TailEnd::Lost(why);
            }
            *paused = Some(want);
            ctx.stop_token().set_applied(want);
        }
        if got {
            continue;
        }
        if let Err(why) = idle(conn, &mut last_rx, p) {
            return TailEnd::Lost(why);
        }
    };
    if let Some(end) = end {
        let _ = ch.close();
        session.set_blocking(true);
        return end;
    }
    session.set_blocking(true);
    session.set_timeout(u32::try_from(p.timeout.as_millis()).unwrap_or(u32::MAX));
    if let Err(e) = ch.wait_close() {
        return TailEnd::Lost(e.message().to_string());
    }
    match ch.exit_status() {
        Ok(0) => TailEnd::Done,
        Ok(GONE) => TailEnd::Gone,
        Ok(n) => TailEnd::Lost(format!("the remote reader ended with status {n}")),
        Err(e) => TailEnd::Lost(e.message().to_string()),
    }
}

/// Sends SIGSTOP (`pause`) or SIGCONT to a detached job's process group on
/// its host. A job that ended, or whose folder is gone, takes none: its
/// tail finds that out.
fn signal(session: &Session, p: &TailParams<'_>, pause: bool) -> Result<(), String> {
    let sig = if pause { "STOP" } else { "CONT" };
    let answer = run_op(session, "signal", p.id, &[sig.to_string()], b"", p.timeout)?;
    match answer.status {
        0 | GONE => Ok(()),
        n => Err(format!(
            "sending SIG{sig} to the job's group failed (status {n}): {}",
            String::from_utf8_lossy(&answer.stderr).trim()
        )),
    }
}

/// Reads what is there on one stream (0 stdout, 1 stderr) and stores it.
/// Returns whether anything came and whether the stream ended.
fn pump(
    ch: &mut Channel,
    i: usize,
    buf: &mut [u8],
    offsets: &mut [u64; 2],
    ctx: &JobContext,
    checkpoint: &dyn Fn([u64; 2]) -> Vec<u8>,
) -> Result<(bool, bool), String> {
    let mut got = false;
    let mut budget = BUDGET;
    let stream_id = if i == 0 { 0 } else { 1 };
    let kind = if i == 0 {
        Stream::Output
    } else {
        Stream::Error
    };
    while budget > 0 {
        match ch.stream(stream_id).read(buf) {
            Ok(0) => return Ok((got, true)),
            Ok(n) => {
                got = true;
                budget = budget.saturating_sub(n);
                let mut next = *offsets;
                next[i] += n as u64;
                let record = Record::bytes(kind, buf[..n].to_vec());
                if !ctx.emit_checkpointed(vec![record], checkpoint(next)) {
                    return Err("the job's records could not be stored".into());
                }
                *offsets = next;
            }
            Err(e) if is_would_block(&e) => return Ok((got, false)),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok((got, false))
}

/// Sends a keepalive when due, fails once the server was silent too long,
/// then waits a tick on the socket.
fn idle(conn: &Connected, last_rx: &mut Instant, p: &TailParams<'_>) -> Result<(), String> {
    match conn.session.keepalive_send() {
        Ok(_) => {}
        Err(e) if ssh_would_block(&e) => {}
        Err(e) => return Err(e.message().to_string()),
    }
    let silent = last_rx.elapsed();
    if silent > p.dead_after {
        return Err(format!(
            "no answer from the server for {}s (keepalive every {}s)",
            silent.as_secs(),
            p.keepalive.as_secs_f64()
        ));
    }
    let mut flags = PollFlags::POLLIN;
    if matches!(
        conn.session.block_directions(),
        BlockDirections::Outbound | BlockDirections::Both
    ) {
        flags |= PollFlags::POLLOUT;
    }
    let mut fds = [PollFd::new(conn.socket.as_fd(), flags)];
    let wait = u16::try_from(TICK.as_millis()).unwrap_or(50);
    match poll(&mut fds, PollTimeout::from(wait)) {
        Ok(n) if n > 0 => {
            if fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
            {
                *last_rx = Instant::now();
            }
            Ok(())
        }
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one operation of the supervisor with this machine's `sh`, as
    /// sshd would, with `home` as `$HOME`.
    fn local_op(
        home: &std::path::Path,
        op: &str,
        id: &str,
        args: &[&str],
        stdin: &str,
    ) -> (i32, String, String) {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("jobctl")
            .arg(op)
            .arg(id)
            .args(args)
            .env("HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        let out = child.wait_with_output().expect("sh ends");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn group_alive(pgid: i32) -> bool {
        // Signal 0 to the group: whether any member (zombies too) is left.
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
    }

    #[test]
    fn the_supervisor_runs_a_command_apart_and_hands_its_files_over_from_offsets() {
        let home = tempfile::tempdir().expect("tempdir");
        let (code, pid, err) = local_op(
            home.path(),
            "start",
            "j1",
            &[],
            "printf 'a\\nb\\n'; printf 'e\\n' >&2; sleep 0.3; printf 'c\\n'; exit 3",
        );
        assert_eq!(code, 0, "{err}");
        let pgid: i32 = pid.trim().parse().expect("the group id");
        assert_ne!(
            nix::unistd::getpgrp().as_raw(),
            pgid,
            "the command has a process group of its own"
        );
        let dir = home.path().join(".cache/jobctl/jobs/j1");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir)
            .expect("folder")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // From offsets 2 and 0: what is left of stdout, all of stderr,
        // until the status is there.
        let (code, out, err) = local_op(home.path(), "tail", "j1", &["2", "0"], "");
        assert_eq!((code, out.as_str(), err.as_str()), (0, "b\nc\n", "e\n"));
        let (code, status, _) = local_op(home.path(), "status", "j1", &[], "");
        assert_eq!((code, status.trim()), (0, "3"));
        local_op(home.path(), "remove", "j1", &[], "");
        assert!(!dir.exists());
        let (code, _, _) = local_op(home.path(), "tail", "j1", &["0", "0"], "");
        assert_eq!(code, GONE, "a folder that is gone says so");
    }

    #[test]
    fn the_supervisor_stops_the_whole_group_and_removes_the_folder() {
        let home = tempfile::tempdir().expect("tempdir");
        let (code, pid, err) =
            local_op(home.path(), "start", "j2", &[], "sleep 60 & sleep 60; wait");
        assert_eq!(code, 0, "{err}");
        let pgid: i32 = pid.trim().parse().expect("the group id");
        assert!(group_alive(pgid));
        let (code, _, err) = local_op(home.path(), "stop", "j2", &["5"], "");
        assert_eq!(code, 0, "{err}");
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            !group_alive(pgid)
        });
        assert!(gone, "the group {pgid} lives on");
        assert!(!home.path().join(".cache/jobctl/jobs/j2").exists());
    }

    #[test]
    fn an_operation_line_quotes_its_arguments() {
        let line = op_line("tail", "1234", &["0".into(), "it's".into()]);
        assert!(line.starts_with("sh -c '"), "{line}");
        assert!(line.ends_with(r" jobctl tail 1234 0 'it'\''s'"), "{line}");
    }
}
