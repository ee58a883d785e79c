//! Writing received records on the client: stdout byte for byte, stderr with
//! prefixes, a progress bar on a terminal, or JSON lines.
//!
//! A record counts as received only once its reader has it: the writer
//! notes where in stdout each record ends, and [`RecordWriter::delivered`]
//! counts the records whose every byte the reader took (see [`Stdout`]).
//! That count is what the client acknowledges, and what the daemon
//! consumes. A closed stdout (`| head -1`) ends the receive; a record the
//! reader took only part of comes again, whole, on the next receive.
//! With `--tag` a record whose last line is held (see `view`) counts once
//! that line is written; `--gather` writes at the end (see `view`).

use std::collections::{HashMap, VecDeque};
use std::io::{self, IsTerminal, Write};

use jobs_core::{JobId, Payload, PayloadKind, ProgressRecord, Stream};

use jobs_protocol::WireRecord;

use crate::stdout::Stdout;
use crate::view::{Gatherer, Tagger};

/// How output records are shown.
#[derive(Debug)]
pub(crate) enum View {
    /// As they are, byte for byte.
    Plain,
    /// Line by line, prefixed with the child's name (`--tag`).
    Tag(Tagger),
    /// Gathered until the end, identical outputs once (`--gather`).
    Gather(Gatherer),
}

/// An end not known yet: the record's last line is held by `--tag`.
const HELD: u64 = u64::MAX;

/// How a page's writing ended.
pub(crate) enum Written {
    /// Every part was written.
    All,
    /// Only this many parts; stdout or stderr is closed.
    Partial(usize),
}

/// Writes records to stdout and stderr.
pub(crate) struct RecordWriter {
    json: bool,
    stdout: Stdout,
    stderr: io::StderrLock<'static>,
    progress_tty: bool,
    progress_shown: bool,
    /// Parts of a split record waiting for the rest (JSON mode, structured kinds).
    assembling: Vec<u8>,
    /// Whether the last text written to stderr ended without a newline.
    out_buf: Vec<u8>,
    err_buf: Vec<u8>,
    /// Where in stdout each record written out and not yet delivered
    /// ends, in order (a record for stderr: where stdout was then).
    ends: VecDeque<u64>,
    /// Records delivered so far.
    delivered: u64,
    /// How output is shown.
    view: View,
    /// Records (counted from the receive's start) whose end is [`HELD`],
    /// by job.
    held: HashMap<JobId, Vec<u64>>,
    /// Records seen so far (a split record once).
    seen: u64,
}

/// Output parts this large are written straight from the page.
const DIRECT: usize = 16 << 10;

fn is_pipe_closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

impl RecordWriter {
    /// A writer; `json` writes one JSON object per record and line,
    /// otherwise output shows as `view` says.
    pub(crate) fn new(json: bool, view: View) -> io::Result<Self> {
        let stderr = io::stderr();
        Ok(RecordWriter {
            json,
            progress_tty: stderr.is_terminal(),
            stdout: Stdout::open()?,
            stderr: stderr.lock(),
            progress_shown: false,
            assembling: Vec::new(),
            out_buf: Vec::with_capacity(1 << 16),
            err_buf: Vec::new(),
            ends: VecDeque::new(),
            delivered: 0,
            view,
            held: HashMap::new(),
            seen: 0,
        })
    }

    /// Records seen so far, a split one once.
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    /// Output bytes of `job`, shown as the view says. Returns whether the
    /// job's last line is held now (`--tag`).
    fn output(&mut self, job: JobId, data: &[u8]) -> bool {
        match &mut self.view {
            View::Plain => {
                self.out_buf.extend_from_slice(data);
                false
            }
            View::Gather(g) => {
                g.feed(job, data);
                false
            }
            View::Tag(t) => {
                let fed = t.feed(job, data, &mut self.out_buf);
                if fed.earlier_written {
                    self.release(&[job]);
                }
                fed.holding
            }
        }
    }

    /// The held records of `jobs` end where what is buffered ends.
    fn release(&mut self, jobs: &[JobId]) {
        let end = self.stdout.written() + self.out_buf.len() as u64;
        for job in jobs {
            for index in self.held.remove(job).unwrap_or_default() {
                let at = index.saturating_sub(self.delivered);
                if let Some(slot) = usize::try_from(at).ok().and_then(|i| self.ends.get_mut(i)) {
                    *slot = end;
                }
            }
        }
    }

    /// Writes every line `--tag` holds (ended with a newline).
    fn write_held(&mut self) {
        if let View::Tag(t) = &mut self.view {
            let jobs = t.flush(&mut self.out_buf);
            self.release(&jobs);
        }
    }

    /// `--gather`'s view of everything received, written to stdout and
    /// flushed; false if the reader went away.
    pub(crate) fn write_gathered(&mut self) -> io::Result<bool> {
        if let View::Gather(g) = &mut self.view {
            let text = g.render();
            self.out_buf.extend_from_slice(&text);
        }
        match self.flush() {
            Ok(()) => {}
            Err(e) if is_pipe_closed(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.stdout.drain()
    }

    /// Records of this receive, counted from its start, that reached
    /// their reader.
    pub(crate) fn delivered(&mut self) -> u64 {
        let taken = self.stdout.taken();
        while self.ends.front().is_some_and(|&end| end <= taken) {
            self.ends.pop_front();
            self.delivered += 1;
        }
        self.delivered
    }

    /// Waits until stdout's reader has taken all that was written or went
    /// away; returns [`delivered`](Self::delivered) and whether the reader
    /// is still there.
    pub(crate) fn settle(&mut self) -> io::Result<(u64, bool)> {
        self.write_held();
        match self.flush() {
            Ok(()) => {}
            Err(e) if is_pipe_closed(&e) => return Ok((self.delivered(), false)),
            Err(e) => return Err(e),
        }
        let there = self.stdout.drain()?;
        Ok((self.delivered(), there))
    }

    /// Writes a page's parts (their payloads are consecutive in `blob`) and
    /// flushes; says how many parts went out. Errors other than a closed
    /// pipe are returned.
    pub(crate) fn write_page(&mut self, parts: &[WireRecord], blob: &[u8]) -> io::Result<Written> {
        let mut off = 0usize;
        for (i, part) in parts.iter().enumerate() {
            let end = off
                .checked_add(part.len)
                .filter(|&e| e <= blob.len())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a page shorter than its records",
                    )
                })?;
            let data = &blob[off..end];
            off = end;
            let direct = !self.json
                && matches!(self.view, View::Plain)
                && part.stream == Stream::Output
                && part.kind == PayloadKind::Bytes
                && data.len() >= DIRECT;
            let holding = if direct {
                // Large output goes from the page to stdout, not through
                // the buffer (what is buffered goes first).
                match self.flush().and_then(|()| self.stdout.write_all(data)) {
                    Ok(()) => {}
                    Err(e) if is_pipe_closed(&e) => return Ok(Written::Partial(i)),
                    Err(e) => return Err(e),
                }
                false
            } else {
                self.part(part, data)
            };
            // Flush at each record's end, so that where it ends in stdout
            // is known.
            if !part.more || self.out_buf.len() >= 1 << 20 {
                match self.flush() {
                    Ok(()) => {}
                    Err(e) if is_pipe_closed(&e) => return Ok(Written::Partial(i)),
                    Err(e) => return Err(e),
                }
            }
            if !part.more {
                self.seen += 1;
                if holding {
                    let index = self.delivered + self.ends.len() as u64;
                    self.held.entry(part.job).or_default().push(index);
                    self.ends.push_back(HELD);
                } else {
                    self.ends.push_back(self.stdout.written());
                }
            }
        }
        match self.flush() {
            Ok(()) => Ok(Written::All),
            Err(e) if is_pipe_closed(&e) => Ok(Written::Partial(parts.len().saturating_sub(1))),
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.err_buf.is_empty() {
            self.stderr.write_all(&self.err_buf)?;
            self.err_buf.clear();
            self.stderr.flush()?;
        }
        if !self.out_buf.is_empty() {
            self.stdout.write_all(&self.out_buf)?;
            self.out_buf.clear();
        }
        Ok(())
    }

    /// Shows one part; returns whether its job's last output line is held.
    fn part(&mut self, part: &WireRecord, data: &[u8]) -> bool {
        if self.json {
            self.assembling.extend_from_slice(data);
            if part.more {
                return false;
            }
            let bytes = std::mem::take(&mut self.assembling);
            let payload = decode(part.kind, bytes);
            let line = serde_json::json!({
                "id": part.job,
                "stream": part.stream.as_str(),
                "data": payload.to_json(),
            });
            self.out_buf.extend_from_slice(line.to_string().as_bytes());
            self.out_buf.push(b'\n');
            return false;
        }
        match (part.stream, part.kind) {
            (Stream::Output, PayloadKind::Bytes) => self.output(part.job, data),
            (Stream::Error, PayloadKind::Bytes) => {
                self.clear_progress();
                self.err_buf.extend_from_slice(data);
                false
            }
            (Stream::Output, PayloadKind::Text) => {
                let holding = self.output(part.job, data);
                if part.more {
                    holding
                } else {
                    self.output(part.job, b"\n")
                }
            }
            _ => {
                // Structured and prefixed records are small: assemble them.
                self.assembling.extend_from_slice(data);
                if part.more {
                    return false;
                }
                let bytes = std::mem::take(&mut self.assembling);
                self.structured(part.job, part.stream, decode(part.kind, bytes))
            }
        }
    }

    /// Shows a whole structured record; returns whether its job's last
    /// output line is held.
    fn structured(&mut self, job: JobId, stream: Stream, payload: Payload) -> bool {
        let prefix = match stream {
            Stream::Output => {
                let mut text = payload.to_display_bytes();
                text.push(b'\n');
                return self.output(job, &text);
            }
            Stream::Progress => {
                if let Payload::Progress(p) = &payload {
                    self.progress(p);
                }
                return false;
            }
            Stream::Error => "",
            Stream::Warning => "WARNING: ",
            Stream::Verbose => "VERBOSE: ",
            Stream::Debug => "DEBUG: ",
            Stream::Information => "INFO: ",
        };
        self.clear_progress();
        let mut text = payload.to_display_bytes();
        if text.last() != Some(&b'\n') {
            text.push(b'\n');
        }
        self.err_buf.extend_from_slice(prefix.as_bytes());
        self.err_buf.extend_from_slice(&text);
        false
    }

    fn progress(&mut self, p: &ProgressRecord) {
        if !self.progress_tty {
            return;
        }
        const WIDTH: usize = 30;
        let line = match p.percent {
            Some(pc) => {
                let pc = pc.clamp(0.0, 100.0);
                let filled = ((pc / 100.0) * WIDTH as f64).round() as usize;
                format!(
                    "{} [{}{}] {:>3.0}% {}",
                    p.activity,
                    "#".repeat(filled),
                    " ".repeat(WIDTH - filled),
                    pc,
                    p.status
                )
            }
            None => format!("{} {}", p.activity, p.status),
        };
        self.err_buf.extend_from_slice(b"\r\x1b[2K");
        self.err_buf.extend_from_slice(line.trim_end().as_bytes());
        self.progress_shown = true;
    }

    fn clear_progress(&mut self) {
        if self.progress_shown {
            self.err_buf.extend_from_slice(b"\r\x1b[2K");
            self.progress_shown = false;
        }
    }

    /// Writes a job's state change among its records (`receive
    /// --write-events`): with `--json` a line on stdout,
    /// `{"id":ID,"event":{"from":..,"to":..,"reason":..}}`; otherwise a
    /// line to stderr, `EVENT: job 3 (build) Running -> Failed: reason`.
    /// A closed stdout is left for the next record to notice.
    pub(crate) fn event(&mut self, ev: &jobs_core::JobEvent) -> io::Result<()> {
        if self.json {
            // In the order CLI.md writes it.
            let line = format!(
                r#"{{"id":{},"event":{{"from":{},"to":{},"reason":{}}}}}"#,
                ev.id,
                serde_json::json!(ev.from),
                serde_json::json!(ev.to),
                serde_json::json!(ev.reason),
            );
            self.out_buf.extend_from_slice(line.as_bytes());
            self.out_buf.push(b'\n');
            return match self.flush() {
                Err(e) if !is_pipe_closed(&e) => Err(e),
                _ => Ok(()),
            };
        }
        let from = ev.from.map_or("(new)".to_string(), |s| s.to_string());
        let to = ev.to.map_or("(removed)".to_string(), |s| s.to_string());
        let reason = ev
            .reason
            .as_deref()
            .map(|r| format!(": {}", crate::render::visible(r)))
            .unwrap_or_default();
        self.note(&format!(
            "EVENT: job {} ({}) {from} -> {to}{reason}",
            ev.id,
            crate::render::visible(&ev.name)
        ));
        Ok(())
    }

    /// Clears a progress bar and writes a line to stderr.
    pub(crate) fn note(&mut self, line: &str) {
        self.clear_progress();
        self.err_buf.extend_from_slice(line.as_bytes());
        self.err_buf.push(b'\n');
        let _ = self.flush();
    }

    /// Writes what `--tag` still holds and clears a progress bar left on
    /// the terminal.
    pub(crate) fn finish(&mut self) {
        self.write_held();
        self.clear_progress();
        let _ = self.flush();
    }
}

/// A payload from its wire kind and bytes; one that does not decode as its
/// kind says is shown as what it is, text or bytes, rather than dropped.
fn decode(kind: PayloadKind, bytes: Vec<u8>) -> Payload {
    Payload::decode(kind, bytes).unwrap_or_else(|e| match String::from_utf8(e.into_bytes()) {
        Ok(s) => Payload::Text(s),
        Err(e) => Payload::Bytes(e.into_bytes()),
    })
}
