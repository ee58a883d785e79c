//! One client connection on the daemon's side: read requests, answer them.
//!
//! A frame that is too large, cut short, or does not parse gets an error
//! reply where one can still be framed, and the connection closes; nothing a
//! client sends can take the daemon down or hold up another connection.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobFilter, JobId, Payload, ReceiveOptions, Received, Record, Stream, WaitMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tracing::{debug, warn};

use crate::daemon::Daemon;
use crate::executors;
use crate::protocol::{
    check_lengths, decode_env, encode, encode_head, ErrorCode, FrameError, ListRequest, Op,
    ReceiveRequest, RemoveRequest, Request, Response, SelectRequest, WaitRequest, WireKind,
    WireRecord, PAGE_BYTES, PAGE_RECORDS, PROTOCOL_VERSION,
};
use crate::store::pool;
use nix::sys::socket::sockopt;

/// How long the rest of a frame may take once its first byte came.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed request: what kind of failure, and the message for the user.
#[derive(Debug)]
pub struct Fail {
    /// The kind (decides the client's exit code).
    pub kind: ErrorCode,
    /// One line.
    pub message: String,
}

impl Fail {
    /// A failure of a kind.
    pub fn new(kind: ErrorCode, message: impl Into<String>) -> Self {
        Fail {
            kind,
            message: message.into(),
        }
    }
}

impl From<jobs_core::Error> for Fail {
    fn from(e: jobs_core::Error) -> Self {
        use jobs_core::ErrorKind as K;
        let kind = match e.kind() {
            K::NoSuchJob => ErrorCode::NoSuchJob,
            K::InvalidInput => ErrorCode::Usage,
            _ => ErrorCode::Failed,
        };
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        Fail { kind, message }
    }
}

type Conn<'a> = (&'a mut OwnedReadHalf, &'a mut OwnedWriteHalf);

/// Serves one connection until the client closes it or breaks the protocol.
pub async fn connection(stream: UnixStream, d: Arc<Daemon>) {
    let me = nix::unistd::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => {}
        Ok(cred) => {
            warn!(uid = cred.uid(), "refused a connection from another user");
            let (_, mut wr) = stream.into_split();
            let _ = reply_error(&mut wr, ErrorCode::Failed, "permission denied").await;
            return;
        }
        Err(e) => {
            warn!("cannot read the peer's credentials: {e}");
            return;
        }
    }
    let (mut rd, mut wr) = stream.into_split();
    loop {
        let (req, blob) = match read_request(&mut rd).await {
            Ok(r) => r,
            Err(FrameError::Closed) => return,
            Err(FrameError::Io(e)) => {
                debug!("connection dropped: {e}");
                return;
            }
            Err(e) => {
                warn!("bad request: {e}");
                let _ = reply_error(&mut wr, ErrorCode::Protocol, &e.to_string()).await;
                return;
            }
        };
        match handle(&d, req.op, blob, (&mut rd, &mut wr)).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(fail) => {
                if reply_error(&mut wr, fail.kind, &fail.message)
                    .await
                    .is_err()
                {
                    return;
                }
                if fail.kind == ErrorCode::Protocol {
                    return;
                }
            }
        }
    }
}

async fn read_request(rd: &mut OwnedReadHalf) -> Result<(Request, Vec<u8>), FrameError> {
    let mut prefix = [0u8; 8];
    let n = rd.read(&mut prefix).await.map_err(FrameError::Io)?;
    if n == 0 {
        return Err(FrameError::Closed);
    }
    let rest = async {
        rd.read_exact(&mut prefix[n..]).await?;
        let (h, b) = check_lengths(prefix).map_err(std::io::Error::other)?;
        let mut header = vec![0u8; h];
        rd.read_exact(&mut header).await?;
        let mut blob = vec![0u8; b];
        rd.read_exact(&mut blob).await?;
        Ok::<_, std::io::Error>((header, blob))
    };
    let (header, blob) = match tokio::time::timeout(FRAME_TIMEOUT, rest).await {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            return Err(match e.into_inner().map(|i| i.downcast::<FrameError>()) {
                Some(Ok(fe)) => *fe,
                Some(Err(other)) => FrameError::Io(std::io::Error::other(other)),
                None => FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()),
            })
        }
        Err(_) => {
            return Err(FrameError::Io(std::io::ErrorKind::TimedOut.into()));
        }
    };
    // Read straight into a request; only one that fails to parse is read
    // again for its version, to name a version mismatch as such.
    let parsed = serde_json::from_slice::<Request>(&header);
    let version = match &parsed {
        Ok(req) => Some(u64::from(req.version)),
        Err(_) => serde_json::from_slice::<serde_json::Value>(&header)
            .ok()
            .and_then(|v| v.get("version").and_then(|v| v.as_u64())),
    };
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(FrameError::Malformed(format!(
            "protocol version {} is not {PROTOCOL_VERSION}: use a jobctl of the same version as the daemon, or stop the daemon",
            version.map_or("(none)".to_string(), |v| v.to_string())
        )));
    }
    let req = parsed.map_err(|e| FrameError::Malformed(e.to_string()))?;
    Ok((req, blob))
}

async fn send(wr: &mut OwnedWriteHalf, resp: &Response, blob: &[u8]) -> std::io::Result<()> {
    let bytes = encode(resp, blob).map_err(std::io::Error::other)?;
    wr.write_all(&bytes).await
}

/// Sends a page: the frame's start from `head`, then the payload bytes
/// straight from where they are (the gathered small records, the large
/// records' own buffers), with no copy into one frame.
async fn send_page(wr: &mut OwnedWriteHalf, page: &mut Page) -> std::io::Result<()> {
    let parts = Response::Page(std::mem::take(&mut page.parts));
    encode_head(&parts, page.len, &mut page.head).map_err(std::io::Error::other)?;
    if let Response::Page(mut parts) = parts {
        // The part list's allocation serves the next page.
        parts.clear();
        page.parts = parts;
    }
    let mut segments = std::mem::take(&mut page.segments);
    let mut result = Ok(());
    if let Some(Segment::Gathered(r)) = segments.first() {
        if r.len() <= 64 << 10 {
            // A page of small records is one write.
            page.head.extend_from_slice(&page.gathered[r.clone()]);
            segments.remove(0);
        }
    }
    if let Err(e) = wr.write_all(&page.head).await {
        result = Err(e);
    }
    for seg in segments.drain(..) {
        if result.is_ok() {
            let bytes = match &seg {
                Segment::Gathered(r) => &page.gathered[r.clone()],
                Segment::Shared(buf, r) => &buf[r.clone()],
            };
            if let Err(e) = wr.write_all(bytes).await {
                result = Err(e);
            }
        }
        if let Segment::Shared(buf, _) = seg {
            // The last page of a record gives its buffer back.
            if let Ok(buf) = Arc::try_unwrap(buf) {
                pool::give(buf);
            }
        }
    }
    page.segments = segments;
    page.gathered.clear();
    page.len = 0;
    result
}

async fn reply_error(
    wr: &mut OwnedWriteHalf,
    kind: ErrorCode,
    message: &str,
) -> std::io::Result<()> {
    send(
        wr,
        &Response::Error {
            kind,
            message: message.to_string(),
        },
        &[],
    )
    .await
}

/// Resolves once the client closed its side (or sent something unasked).
async fn client_gone(rd: &mut OwnedReadHalf) {
    let mut b = [0u8; 1];
    let _ = rd.read(&mut b).await;
}

/// Answers one request; `Ok(false)` closes the connection.
async fn handle(d: &Daemon, op: Op, blob: Vec<u8>, (rd, wr): Conn<'_>) -> Result<bool, Fail> {
    let resp = match op {
        Op::Start(start) => {
            if d.closing.load(Ordering::SeqCst) {
                return Err(Fail::new(ErrorCode::Failed, "the session is ending"));
            }
            let spec = executors::job_spec(d, start, decode_env(&blob))?;
            let id = d.session.start(spec)?;
            Response::Started(d.session.info(id)?)
        }
        Op::List(l) => Response::Jobs(d.session.get(&filter(l))?),
        Op::Show { id } => {
            let job = d.session.info(id)?;
            let children = job
                .children
                .iter()
                .filter_map(|c| d.session.info(*c).ok())
                .collect();
            Response::Shown { job, children }
        }
        Op::Receive(r) => return receive(d, r, (rd, wr)).await,
        Op::Ack { .. } => {
            return Err(Fail::new(ErrorCode::Protocol, "an ack outside a receive"));
        }
        Op::Wait(w) => match wait(d, w, rd).await? {
            Some(r) => r,
            None => return Ok(false),
        },
        Op::Stop(s) => {
            let ids = select(d, &s)?;
            for &id in &ids {
                d.session.request_stop(id)?;
            }
            for &id in &ids {
                d.session.wait_finished(id).await?;
            }
            Response::Done(ids)
        }
        Op::Remove(r) => Response::Done(remove(d, r).await?),
        Op::Status => Response::Status {
            pid: std::process::id(),
        },
        Op::Shutdown => {
            d.close().await;
            let _ = send(
                wr,
                &Response::Status {
                    pid: std::process::id(),
                },
                &[],
            )
            .await;
            d.exit.notify_one();
            return Ok(false);
        }
        Op::Plugins => Response::Plugins(d.types.clone()),
    };
    Ok(send(wr, &resp, &[]).await.is_ok())
}

fn filter(l: ListRequest) -> JobFilter {
    JobFilter {
        ids: l.ids,
        name: l.name,
        state: l.state,
        type_name: l.type_name.map(|t| executors::type_name_of(&t)),
        command: l.command,
        has_more_data: l.has_more_data,
        newest: l.newest,
        include_children: l.include_children,
    }
}

fn select(d: &Daemon, s: &SelectRequest) -> Result<Vec<JobId>, Fail> {
    let jobs = d.session.get(&JobFilter {
        ids: s.ids.clone(),
        name: s.name.clone(),
        state: s.state,
        ..JobFilter::default()
    })?;
    Ok(jobs.into_iter().map(|j| j.id).collect())
}

async fn wait(
    d: &Daemon,
    w: WaitRequest,
    rd: &mut OwnedReadHalf,
) -> Result<Option<Response>, Fail> {
    let mode = if w.any { WaitMode::Any } else { WaitMode::All };
    let timeout = w.timeout_ms.map(Duration::from_millis);
    tokio::select! {
        outcome = d.session.wait(&w.ids, mode, timeout) => {
            let o = outcome?;
            Ok(Some(Response::Waited { done: o.done, timed_out: o.timed_out }))
        }
        _ = client_gone(rd) => Ok(None),
    }
}

async fn remove(d: &Daemon, r: RemoveRequest) -> Result<Vec<JobId>, Fail> {
    let ids = select(d, &r.select)?;
    let mut removed = Vec::new();
    let mut refused = Vec::new();
    for id in ids {
        match d.session.remove(id, r.force).await {
            Ok(()) => removed.push(id),
            Err(e) => match (e.kind(), e.state()) {
                (jobs_core::ErrorKind::NotFinished, Some(state)) => {
                    let name = d.session.info(id).map(|i| i.name).unwrap_or_default();
                    refused.push(format!(
                        "cannot remove job {id} ({name}): it is {state}; stop it first or use --force"
                    ));
                }
                (jobs_core::ErrorKind::NoSuchJob, _) => {}
                _ => refused.push(Fail::from(e).message),
            },
        }
    }
    if refused.is_empty() {
        Ok(removed)
    } else {
        Err(Fail::new(ErrorCode::Failed, refused.join("; ")))
    }
}

/// The payload as wire bytes.
fn wire_payload(payload: Payload) -> (WireKind, Vec<u8>) {
    let json = |v: Result<Vec<u8>, serde_json::Error>| v.unwrap_or_else(|_| b"null".to_vec());
    match payload {
        Payload::Bytes(b) => (WireKind::Bytes, b),
        Payload::Text(t) => (WireKind::Text, t.into_bytes()),
        Payload::Value(v) => (WireKind::Value, json(serde_json::to_vec(&v))),
        Payload::Live(l) => (WireKind::Value, json(serde_json::to_vec(&l.render()))),
        Payload::Progress(p) => (WireKind::Progress, json(serde_json::to_vec(&p))),
        Payload::Error(e) => (WireKind::Error, json(serde_json::to_vec(&e))),
    }
}

/// Pages sent ahead of the client's acks: the client writes one page while
/// the next ones travel.
const WINDOW: usize = 4;

/// Payloads this large are sent from their own buffer; smaller ones are
/// gathered into the page's buffer, so a page of small records is one write.
const GATHER_BELOW: usize = 16 << 10;

/// The records a page completes: (index of the record's last part, the
/// record's job and seq).
type Completes = Vec<(usize, JobId, u64)>;

/// Where a run of a page's payload bytes is.
enum Segment {
    /// In the page's buffer of gathered small payloads.
    Gathered(Range<usize>),
    /// In a large record's own buffer, shared by the pages it is split over.
    Shared(Arc<Vec<u8>>, Range<usize>),
}

/// A page being filled: parts, where their bytes are, and the records it
/// completes; and the pages sent but not yet acknowledged. Its buffers are
/// kept from page to page.
#[derive(Default)]
struct Page {
    parts: Vec<WireRecord>,
    gathered: Vec<u8>,
    segments: Vec<Segment>,
    /// Payload bytes in the page.
    len: usize,
    completes: Completes,
    /// The frame's lengths and header.
    head: Vec<u8>,
    /// Per page in flight: its part count and the records it completes.
    inflight: VecDeque<(usize, Completes)>,
}

impl Page {
    /// Whether the page is full and goes out before another part.
    fn full(&self) -> bool {
        self.len >= PAGE_BYTES || self.parts.len() >= PAGE_RECORDS
    }

    /// Adds a part of a record.
    fn push(&mut self, part: WireRecord, bytes: Segment) {
        self.len += part.len;
        self.parts.push(part);
        match (self.segments.last_mut(), bytes) {
            (Some(Segment::Gathered(last)), Segment::Gathered(r)) if last.end == r.start => {
                last.end = r.end;
            }
            (_, seg) => self.segments.push(seg),
        }
    }
}

/// Sends a page, then reads acks while more than the window is in flight;
/// `false` when the client wrote less than a page (it is going away).
async fn flush_page(
    d: &Daemon,
    page: &mut Page,
    keep: bool,
    (rd, wr): Conn<'_>,
) -> Result<bool, Fail> {
    if !page.parts.is_empty() {
        let n = page.parts.len();
        if send_page(wr, page).await.is_err() {
            return Ok(false);
        }
        let completes = std::mem::take(&mut page.completes);
        page.inflight.push_back((n, completes));
    }
    while page.inflight.len() >= WINDOW {
        if !read_ack(d, page, keep, rd).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads every outstanding ack.
async fn drain_acks(
    d: &Daemon,
    page: &mut Page,
    keep: bool,
    rd: &mut OwnedReadHalf,
) -> Result<bool, Fail> {
    while !page.inflight.is_empty() {
        if !read_ack(d, page, keep, rd).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads the ack of the oldest page in flight and consumes the records the
/// client wrote out.
async fn read_ack(
    d: &Daemon,
    page: &mut Page,
    keep: bool,
    rd: &mut OwnedReadHalf,
) -> Result<bool, Fail> {
    let Some((n, completes)) = page.inflight.pop_front() else {
        return Ok(true);
    };
    let written = match read_request(rd).await {
        Ok((
            Request {
                op: Op::Ack { written },
                ..
            },
            _,
        )) => written.min(n),
        Ok(_) => return Err(Fail::new(ErrorCode::Protocol, "expected an ack")),
        Err(_) => 0,
    };
    let done: Vec<Received> = completes
        .into_iter()
        .filter(|(last, _, _)| *last < written)
        .map(|(_, job, seq)| Received {
            job,
            seq,
            record: Record::text(Stream::Output, ""),
        })
        .collect();
    if !keep && !done.is_empty() {
        d.session.consume(&done)?;
    }
    if written < n {
        page.inflight.clear();
        return Ok(false);
    }
    Ok(true)
}

/// The socket send buffer a receive asks for: a page and more, so that a
/// page goes out in one write and the client reads it in one wakeup.
const SEND_BUFFER: usize = 2 * PAGE_BYTES;

async fn receive(d: &Daemon, r: ReceiveRequest, (rd, wr): Conn<'_>) -> Result<bool, Fail> {
    // The kernel caps it (net.core.wmem_max); a smaller buffer only costs
    // more wakeups.
    let _ = nix::sys::socket::setsockopt(wr.as_ref(), sockopt::SndBuf, &SEND_BUFFER);
    d.session.get(&JobFilter {
        ids: r.ids.clone(),
        ..JobFilter::default()
    })?;
    let opts = ReceiveOptions {
        keep: true,
        no_recurse: r.no_recurse,
        limit: None,
    };
    let mut follow = d.session.follow(&r.ids, opts)?;
    let mut page = Page::default();
    loop {
        let batch = if r.wait {
            tokio::select! {
                b = follow.next_batch(PAGE_RECORDS) => b?,
                _ = client_gone(rd) => return Ok(false),
            }
        } else {
            // Only what is there now: a batch that would have to wait is none.
            tokio::select! {
                biased;
                b = follow.next_batch(PAGE_RECORDS) => b?,
                _ = std::future::ready(()) => Vec::new(),
            }
        };
        if batch.is_empty() {
            break;
        }
        for rec in batch {
            let (kind, bytes) = wire_payload(rec.record.payload);
            let part = |len: usize, more: bool| WireRecord {
                job: rec.job,
                seq: rec.seq,
                stream: rec.record.stream,
                kind,
                len,
                more,
            };
            if bytes.len() < GATHER_BELOW {
                let start = page.gathered.len();
                page.gathered.extend_from_slice(&bytes);
                let end = page.gathered.len();
                page.push(part(bytes.len(), false), Segment::Gathered(start..end));
                page.completes
                    .push((page.parts.len() - 1, rec.job, rec.seq));
                if page.full() && !flush_page(d, &mut page, r.keep, (&mut *rd, &mut *wr)).await? {
                    return Ok(false);
                }
                continue;
            }
            // A large payload goes out of its own buffer, in parts of at
            // most a page.
            let total = bytes.len();
            let mut shared = Some(Arc::new(bytes));
            let mut start = 0;
            while start < total {
                let end = total.min(start + PAGE_BYTES);
                let more = end < total;
                // The last part holds the record's buffer alone once the
                // pages before it went out.
                let buf = match &shared {
                    Some(b) if more => Arc::clone(b),
                    _ => match shared.take() {
                        Some(b) => b,
                        None => break,
                    },
                };
                page.push(part(end - start, more), Segment::Shared(buf, start..end));
                if !more {
                    page.completes
                        .push((page.parts.len() - 1, rec.job, rec.seq));
                }
                start = end;
                if page.full() && !flush_page(d, &mut page, r.keep, (&mut *rd, &mut *wr)).await? {
                    return Ok(false);
                }
            }
        }
        if !flush_page(d, &mut page, r.keep, (&mut *rd, &mut *wr)).await? {
            return Ok(false);
        }
        // Waiting for more watches the connection: no ack may be pending.
        if r.wait && !drain_acks(d, &mut page, r.keep, rd).await? {
            return Ok(false);
        }
    }
    if !flush_page(d, &mut page, r.keep, (&mut *rd, &mut *wr)).await?
        || !drain_acks(d, &mut page, r.keep, rd).await?
    {
        return Ok(false);
    }
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for &id in &r.ids {
        if seen.insert(id) {
            ids.push(id);
        }
    }
    let rows = d.session.get(&JobFilter {
        ids,
        include_children: true,
        ..JobFilter::default()
    })?;
    Ok(send(wr, &Response::End(rows), &[]).await.is_ok())
}
