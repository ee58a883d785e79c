//! What feeds the live view, each on a thread and a connection of its own,
//! into one channel the screen's loop reads: the keyboard, the session's
//! state-change events (pushed by the daemon, never polled), the records
//! of the jobs on screen (read with keep: nothing is consumed), and the
//! outcome of the actions a key asked for (stop, remove, ...), which may
//! take as long as a job takes to stop.
//!
//! Records have no event of their own, so the selected job's output tail
//! and the progress of the jobs on screen are read again every
//! [`RECORDS_EVERY`]; a read that took long (a job with much output) waits
//! ten times as long before the next, so it never costs the daemon more
//! than a tenth of one connection.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use jobs_core::{JobEvent, JobId, JobInfo, Payload, ProgressRecord, Stream};
use jobs_protocol::home::Home;
use jobs_protocol::{Op, ReceiveRequest, RemoveRequest, Response, SelectRequest};

use crate::client::Client;
use crate::output::{decode, stream_prefix};
use crate::render::visible;

/// How often the records of the jobs on screen are read again.
pub(crate) const RECORDS_EVERY: Duration = Duration::from_millis(500);

/// The most bytes of a job's output the tail keeps.
const TAIL_BYTES: usize = 64 << 10;

/// What the screen's loop is told.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A key, a resize, ...
    Input(crossterm::event::Event),
    /// The terminal can no longer be read.
    InputLost(String),
    /// State changes, oldest first.
    Events(Vec<JobEvent>),
    /// The event stream ended; the view is no longer live.
    EventsLost(String),
    /// The records read for the jobs on screen.
    Records(Records),
    /// An action's outcome, for the status line.
    Done(String),
    /// SIGTERM, SIGHUP or SIGINT: end the view, giving the terminal back.
    Signal(i32),
}

/// The records of the jobs on screen, as read (kept) at one moment.
#[derive(Debug, Default)]
pub(crate) struct Records {
    /// The job whose output was read, and the end of that output as lines.
    pub(crate) tail: Option<(JobId, Vec<String>)>,
    /// Each job's latest progress record.
    pub(crate) progress: HashMap<JobId, ProgressRecord>,
    /// The rows of the jobs read, as they were when the read ended.
    pub(crate) rows: Vec<JobInfo>,
}

/// Which records the screen wants.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Wanted {
    /// The selected job: its output (children's too) and its progress.
    pub(crate) output: Option<JobId>,
    /// Jobs whose progress bar is on screen.
    pub(crate) progress: Vec<JobId>,
}

/// The wanted records, shared with the records thread, which the screen
/// wakes when they change.
#[derive(Debug, Default)]
pub(crate) struct Want {
    wanted: Mutex<Wanted>,
    changed: Condvar,
}

impl Want {
    /// Sets what is wanted; wakes the reader if it changed.
    pub(crate) fn set(&self, w: Wanted) {
        let Ok(mut cur) = self.wanted.lock() else {
            return;
        };
        if *cur != w {
            *cur = w;
            self.changed.notify_one();
        }
    }
}

/// An action a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `stop`.
    Stop(JobId),
    /// `remove`.
    Remove(JobId),
    /// `suspend`.
    Suspend(JobId),
    /// `resume`.
    Resume(JobId),
}

/// Reads keys and resizes until the terminal goes away.
pub(crate) fn input(tx: Sender<Msg>) {
    loop {
        match crossterm::event::read() {
            Ok(ev) => {
                if tx.send(Msg::Input(ev)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Msg::InputLost(e.to_string()));
                return;
            }
        }
    }
}

/// Turns SIGTERM, SIGHUP and SIGINT into a message, so that the view ends
/// through its loop and gives the terminal back rather than dying in raw
/// mode on the alternate screen.
pub(crate) fn signals(tx: Sender<Msg>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("top-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = tx.send(Msg::Signal(sig));
            }
        })?;
    Ok(())
}

/// Follows the event stream of `c`, which has sent its request, until it
/// ends or the screen is gone.
pub(crate) fn events(mut c: Client, tx: Sender<Msg>) {
    let why = loop {
        match c.recv() {
            Ok((Response::Events(evs), _)) => {
                if tx.send(Msg::Events(evs)).is_err() {
                    return;
                }
            }
            Ok((Response::End(_), _)) => break "the session's event stream ended".to_string(),
            Ok((other, _)) => break format!("unexpected reply to events: {other:?}"),
            Err(e) => break format!("{e:#}"),
        }
    };
    let _ = tx.send(Msg::EventsLost(why));
}

/// Reads the wanted records again and again, on a connection of its own.
pub(crate) fn records(home: Home, want: Arc<Want>, tx: Sender<Msg>) {
    let mut client: Option<Client> = None;
    let mut pause = RECORDS_EVERY;
    let mut last = Wanted::default();
    loop {
        let wanted = {
            let Ok(guard) = want.wanted.lock() else {
                return;
            };
            // Wake early only when what is wanted changed.
            let (guard, _) = match want
                .changed
                .wait_timeout_while(guard, pause, |w| *w == last)
            {
                Ok(r) => r,
                Err(_) => return,
            };
            guard.clone()
        };
        last = wanted.clone();
        if wanted.output.is_none() && wanted.progress.is_empty() {
            pause = RECORDS_EVERY;
            continue;
        }
        let begin = Instant::now();
        let c = match client.take() {
            Some(c) => c,
            None => match Client::connect(&home) {
                Ok(Some(c)) => c,
                _ => {
                    pause = RECORDS_EVERY * 4;
                    continue;
                }
            },
        };
        let mut c = c;
        match read_records(&mut c, &wanted) {
            Ok(r) => {
                client = Some(c);
                if tx.send(Msg::Records(r)).is_err() {
                    return;
                }
            }
            // A job removed meanwhile, the daemon gone: the next round
            // reads what is wanted then, on a new connection.
            Err(_) => client = None,
        }
        pause = RECORDS_EVERY.max(begin.elapsed() * 10);
    }
}

/// One round of [`records`].
fn read_records(c: &mut Client, w: &Wanted) -> Result<Records> {
    let mut out = Records::default();
    if let Some(id) = w.output {
        let mut tail = Tail::default();
        let rows = receive_kept(c, vec![id], false, |job, stream, payload| match stream {
            Stream::Progress => {
                if let Payload::Progress(p) = payload {
                    out.progress.insert(job, p);
                }
            }
            Stream::Output => tail.output(&payload.to_display_bytes(), &payload),
            other => tail.line(stream_prefix(other), &payload.to_display_bytes()),
        })?;
        out.tail = Some((id, tail.lines()));
        out.rows.extend(rows);
    }
    let others: Vec<JobId> = w
        .progress
        .iter()
        .copied()
        .filter(|&id| Some(id) != w.output)
        .collect();
    if !others.is_empty() {
        let rows = receive_kept(c, others, true, |job, stream, payload| {
            if let (Stream::Progress, Payload::Progress(p)) = (stream, payload) {
                out.progress.insert(job, p);
            }
        })?;
        out.rows.extend(rows);
    }
    Ok(out)
}

/// The end of a job's output, bounded to [`TAIL_BYTES`].
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn output(&mut self, bytes: &[u8], payload: &Payload) {
        self.bytes.extend_from_slice(bytes);
        // Text and values are whole lines; bytes are as the job wrote them.
        if !matches!(payload, Payload::Bytes(_)) && bytes.last() != Some(&b'\n') {
            self.bytes.push(b'\n');
        }
        self.trim();
    }

    fn line(&mut self, prefix: &str, bytes: &[u8]) {
        if !self.bytes.is_empty() && self.bytes.last() != Some(&b'\n') {
            self.bytes.push(b'\n');
        }
        self.bytes.extend_from_slice(prefix.as_bytes());
        self.bytes.extend_from_slice(bytes);
        if bytes.last() != Some(&b'\n') {
            self.bytes.push(b'\n');
        }
        self.trim();
    }

    fn trim(&mut self) {
        if self.bytes.len() > 2 * TAIL_BYTES {
            let cut = self.bytes.len() - TAIL_BYTES;
            self.bytes.drain(..cut);
        }
    }

    /// The lines, each shown as a terminal may (controls escaped, tabs
    /// expanded, `\r` keeping what followed it, as a terminal shows it).
    fn lines(self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let mut lines: Vec<String> = text
            .split('\n')
            .map(|l| {
                let l = l.trim_end_matches('\r');
                let l = l.rsplit('\r').next().unwrap_or(l);
                visible(&l.replace('\t', "    ")).into_owned()
            })
            .collect();
        if lines.len() == 1 && lines[0].is_empty() {
            lines.clear();
        }
        lines
    }
}

/// Receives the records of `ids` with keep (nothing consumed), handing each
/// whole record to `each`; returns the jobs' rows as the receive ended.
fn receive_kept(
    c: &mut Client,
    ids: Vec<JobId>,
    no_recurse: bool,
    mut each: impl FnMut(JobId, Stream, Payload),
) -> Result<Vec<JobInfo>> {
    c.send(
        Op::Receive(ReceiveRequest {
            ids,
            keep: true,
            wait: false,
            no_recurse,
        }),
        &[],
    )?;
    let mut blob = Vec::new();
    let mut assembling = Vec::new();
    let mut seen = 0u64;
    loop {
        match c.recv_into(&mut blob)? {
            Response::Page(parts) => {
                let mut at = 0usize;
                for p in &parts {
                    let bytes = blob
                        .get(at..at + p.len)
                        .ok_or_else(|| anyhow!("a page shorter than its records"))?;
                    at += p.len;
                    assembling.extend_from_slice(bytes);
                    if !p.more {
                        seen += 1;
                        let payload = decode(p.kind, std::mem::take(&mut assembling));
                        each(p.job, p.stream, payload);
                    }
                }
                c.send(
                    Op::Ack {
                        written: parts.len(),
                        delivered: seen,
                    },
                    &[],
                )?;
            }
            Response::Settle => c.send(
                Op::Ack {
                    written: 1,
                    delivered: seen,
                },
                &[],
            )?,
            Response::End(rows) => return Ok(rows),
            other => bail!("unexpected reply to a receive: {other:?}"),
        }
    }
}

/// Runs an action on a connection of its own; its outcome goes to the
/// status line.
pub(crate) fn act(home: Home, action: Action, tx: Sender<Msg>) {
    let outcome = match run_action(&home, action) {
        Ok(done) => done,
        Err(e) => format!("{e:#}"),
    };
    let _ = tx.send(Msg::Done(outcome));
}

fn run_action(home: &Home, action: Action) -> Result<String> {
    let mut c = Client::connect(home)?.ok_or_else(|| anyhow!("the session daemon is gone"))?;
    let select = |id| SelectRequest {
        ids: vec![id],
        ..SelectRequest::default()
    };
    match action {
        Action::Stop(id) => match c.call(Op::Stop(select(id)))? {
            Response::Jobs(_) => Ok(format!("stopped job {id}")),
            other => bail!("unexpected reply to stop: {other:?}"),
        },
        Action::Remove(id) => match c.call(Op::Remove(RemoveRequest {
            select: select(id),
            all: false,
            force: false,
        }))? {
            Response::Done(_) => Ok(format!("removed job {id}")),
            Response::Removed { warnings, .. } => {
                Ok(format!("removed job {id}; {}", warnings.join("; ")))
            }
            other => bail!("unexpected reply to remove: {other:?}"),
        },
        Action::Suspend(id) => match c.call(Op::Suspend(select(id)))? {
            Response::Jobs(_) => Ok(format!("suspended job {id}")),
            other => bail!("unexpected reply to suspend: {other:?}"),
        },
        Action::Resume(id) => match c.call(Op::Resume(select(id)))? {
            Response::Jobs(_) => Ok(format!("resumed job {id}")),
            other => bail!("unexpected reply to resume: {other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_lines_and_escapes_controls() {
        let mut t = Tail::default();
        t.output(b"one\ntw", &Payload::Bytes(vec![]));
        t.output(b"o\n", &Payload::Bytes(vec![]));
        t.line("WARNING: ", b"careful");
        t.output(b"x\x1b[2Jy\r\rdone\r\n", &Payload::Bytes(vec![]));
        assert_eq!(t.lines(), ["one", "two", "WARNING: careful", "done"]);
        let mut t = Tail::default();
        t.output(b"a\x1bb", &Payload::Text(String::new()));
        assert_eq!(t.lines(), ["a\\u{1b}b"]);
    }

    #[test]
    fn the_tail_is_bounded() {
        let mut t = Tail::default();
        for i in 0..100_000 {
            t.output(format!("line {i}\n").as_bytes(), &Payload::Bytes(vec![]));
        }
        assert!(t.bytes.len() <= 2 * TAIL_BYTES);
        assert_eq!(t.lines().last().map(String::as_str), Some("line 99999"));
    }
}
