//! `receive` on the daemon's side: records go out in pages of at most
//! [`PAGE_BYTES`] and [`PAGE_RECORDS`], a few pages ahead of the client's
//! acknowledgements. A large payload is sent from its own buffer, in parts.
//!
//! A record is consumed only once the client says it reached its reader:
//! each ack counts the records delivered since the receive began, which
//! for a pipe may lag the records written into it. Before waiting for more
//! records, and before its end, the receive asks the client to settle
//! ([`Response::Settle`]): to answer once its reader took everything or
//! went away. What was sent and never delivered stays in the cache.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use jobs_core::{Follow, JobFilter, JobId, ReceiveOptions, Received, Record, Stream};
use jobs_protocol::{
    encode_head, ErrorCode, Op, ReceiveRequest, Request, Response, WireRecord, PAGE_BYTES,
    PAGE_RECORDS,
};
use jobs_store_sqlite::pool;
use nix::sys::socket::sockopt;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::fail::Fail;
use crate::shared::Daemon;
use crate::wire::{client_gone, read_request, send, Conn};

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
    crate::reported::before_report();
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

/// Pages sent ahead of the client's acks: the client writes one page while
/// the next ones travel, and a daemon or client that waits for a CPU on a
/// busy machine finds the other still busy rather than idle.
const WINDOW: usize = 8;

/// Payloads this large are sent from their own buffer; smaller ones are
/// gathered into the page's buffer, so a page of small records is one write.
const GATHER_BELOW: usize = 16 << 10;

/// Where a run of a page's payload bytes is.
enum Segment {
    /// In the page's buffer of gathered small payloads.
    Gathered(Range<usize>),
    /// In a large record's own buffer, shared by the pages it is split over.
    Shared(Arc<Vec<u8>>, Range<usize>),
}

/// A page being filled: parts, where their bytes are; the pages sent but
/// not yet acknowledged; and the records sent but not yet delivered. Its
/// buffers are kept from page to page.
#[derive(Default)]
struct Page {
    parts: Vec<WireRecord>,
    gathered: Vec<u8>,
    segments: Vec<Segment>,
    /// Payload bytes in the page.
    len: usize,
    /// The frame's lengths and header.
    head: Vec<u8>,
    /// Per page in flight: its part count.
    inflight: VecDeque<usize>,
    /// Records whose last part went out and that the client has not said
    /// were delivered, in the order they went: (job, seq).
    undelivered: VecDeque<(JobId, u64)>,
    /// Records of this receive delivered so far.
    delivered: u64,
    /// Whether records are consumed (not `keep`), so tracked until
    /// delivered.
    consume: bool,
}

impl Page {
    /// Whether the page is full and goes out before another part.
    fn full(&self) -> bool {
        self.len >= PAGE_BYTES || self.parts.len() >= PAGE_RECORDS
    }

    /// Notes that a record's last part is in the page.
    fn completes(&mut self, job: JobId, seq: u64) {
        if self.consume {
            self.undelivered.push_back((job, seq));
        }
    }

    /// Takes the records the client says were delivered (`delivered`
    /// counts from the receive's start) off the undelivered ones.
    fn deliver(&mut self, delivered: u64) -> Vec<Received> {
        let n = delivered.saturating_sub(self.delivered);
        let n =
            usize::try_from(n).map_or(self.undelivered.len(), |n| n.min(self.undelivered.len()));
        self.delivered += n as u64;
        self.undelivered
            .drain(..n)
            .map(|(job, seq)| Received {
                job,
                seq,
                record: Record::text(Stream::Output, ""),
            })
            .collect()
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
            // The client went away: the acks it sent first still count.
            drain_acks(d, page, keep, rd).await?;
            return Ok(false);
        }
        page.inflight.push_back(n);
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
/// client delivered.
async fn read_ack(
    d: &Daemon,
    page: &mut Page,
    keep: bool,
    rd: &mut OwnedReadHalf,
) -> Result<bool, Fail> {
    let Some(n) = page.inflight.pop_front() else {
        return Ok(true);
    };
    // Less than the page written: the client is going away.
    let more = matches!(ack(d, page, keep, rd).await?, Some(written) if written >= n);
    if !more {
        page.inflight.clear();
    }
    Ok(more)
}

/// Reads an ack and consumes the records it says were delivered; returns
/// its `written`, or `None` if the client went away instead.
async fn ack(
    d: &Daemon,
    page: &mut Page,
    keep: bool,
    rd: &mut OwnedReadHalf,
) -> Result<Option<usize>, Fail> {
    let (written, delivered) = match read_request(rd).await {
        Ok((
            Request {
                op: Op::Ack { written, delivered },
                ..
            },
            _,
        )) => (written, delivered),
        Ok(_) => return Err(Fail::new(ErrorCode::Protocol, "expected an ack")),
        Err(_) => return Ok(None),
    };
    let done = page.deliver(delivered);
    if !keep && !done.is_empty() {
        d.session.consume(&done)?;
    }
    Ok(Some(written))
}

/// How [`acks_until_records`] ended.
enum Caught {
    /// Records came (perhaps none: the jobs are finished and drained).
    Records(Vec<Received>),
    /// Every page in flight is acknowledged, and no record came.
    Acked,
    /// The client is going away.
    Gone,
}

/// Reads the acks of the pages in flight as they come, until records come
/// or every page is acknowledged. An ack is read only once its first bytes
/// are there, and then whole: the records are never waited for in the
/// middle of a frame.
async fn acks_until_records(
    d: &Daemon,
    page: &mut Page,
    keep: bool,
    rd: &mut OwnedReadHalf,
    follow: &mut Follow,
) -> Result<Caught, Fail> {
    while !page.inflight.is_empty() {
        tokio::select! {
            biased;
            b = follow.next_batch(PAGE_RECORDS) => return Ok(Caught::Records(b?)),
            ready = rd.readable() => {
                if ready.is_err() || !read_ack(d, page, keep, rd).await? {
                    return Ok(Caught::Gone);
                }
            }
        }
    }
    Ok(Caught::Acked)
}

/// Once every page is acknowledged: asks the client to answer when its
/// reader took what was written, and consumes what it says was delivered.
/// Nothing to ask with `keep`, or when every record was delivered already.
async fn settle(d: &Daemon, page: &mut Page, keep: bool, (rd, wr): Conn<'_>) -> Result<bool, Fail> {
    if keep || page.undelivered.is_empty() {
        return Ok(true);
    }
    if send(wr, &Response::Settle, &[]).await.is_err() {
        return Ok(false);
    }
    // 0: the reader went away, and the client with it.
    Ok(matches!(ack(d, page, keep, rd).await?, Some(written) if written > 0))
}

/// The socket send buffer a receive asks for (the kernel doubles it): a
/// few pages, so that a page goes out in one write, the client reads it
/// in one wakeup, and several wait in the socket while the daemon is not
/// running.
const SEND_BUFFER: usize = 4 * PAGE_BYTES;

pub(crate) async fn receive(
    d: &Daemon,
    r: ReceiveRequest,
    (rd, wr): Conn<'_>,
) -> Result<bool, Fail> {
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
    let mut page = Page {
        consume: !r.keep,
        ..Page::default()
    };
    loop {
        // What is there now: a batch that would have to wait is none.
        let mut batch = tokio::select! {
            biased;
            b = follow.next_batch(PAGE_RECORDS) => b?,
            _ = std::future::ready(()) => Vec::new(),
        };
        if batch.is_empty() && r.wait {
            // Caught up with a job still writing: take the acks of the
            // pages in flight as they come, and the next records as soon
            // as there are some, so that the pages keep flowing.
            match acks_until_records(d, &mut page, r.keep, rd, &mut follow).await? {
                Caught::Records(b) => batch = b,
                Caught::Gone => return Ok(false),
                Caught::Acked => {}
            }
        }
        if batch.is_empty() && r.wait {
            // Waiting for more watches the connection: no ack may be
            // pending, and what the reader took is consumed first.
            if !drain_acks(d, &mut page, r.keep, rd).await?
                || !settle(d, &mut page, r.keep, (&mut *rd, &mut *wr)).await?
            {
                return Ok(false);
            }
            batch = tokio::select! {
                b = follow.next_batch(PAGE_RECORDS) => b?,
                _ = client_gone(rd) => return Ok(false),
            };
        }
        if batch.is_empty() {
            break;
        }
        for rec in batch {
            let (kind, bytes) = rec.record.payload.encode();
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
                page.completes(rec.job, rec.seq);
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
                    page.completes(rec.job, rec.seq);
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
    }
    if !flush_page(d, &mut page, r.keep, (&mut *rd, &mut *wr)).await?
        || !drain_acks(d, &mut page, r.keep, rd).await?
        || !settle(d, &mut page, r.keep, (&mut *rd, &mut *wr)).await?
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
