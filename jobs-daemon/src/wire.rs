//! A connection's framing on the daemon's side: reading requests, writing
//! responses, noticing a client that went away. The one parser of requests
//! is [`jobs_protocol::parse_request`]; this reads the bytes of a frame
//! without blocking the runtime, with a deadline for a frame begun.
//!
//! Memory: a request's header is at most [`MAX_HEADER`] and its blob at
//! most [`MAX_REQUEST_BLOB`] (a `start`'s environment; a larger one is
//! refused once its header says it is a `start`, before a byte of it is
//! read). And the bytes of every request being read or handled, across
//! all connections, fit in one budget of [`REQUEST_BUDGET`]: a frame
//! reserves its length before its bytes are read, waits up to
//! [`BUDGET_WAIT`] for room, and is refused as busy past it. So clients
//! sending large frames at once cost the daemon the budget, not their
//! number times the frame size.

use std::time::Duration;

use jobs_protocol::{
    check_lengths, encode, parse_request, EnvError, ErrorCode, FrameError, Op, Request, Response,
    MAX_HEADER, MAX_REQUEST_BLOB,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long the rest of a frame may take once its first byte came.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Request bytes the daemon holds at once, over every connection.
pub(crate) const REQUEST_BUDGET: usize = 64 << 20;

/// How long a frame waits for room in the budget before it is refused.
const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// The budget of request bytes (permits are bytes).
static IN_FLIGHT: Semaphore = Semaphore::const_new(REQUEST_BUDGET);

const _: () = assert!(MAX_HEADER + MAX_REQUEST_BLOB <= REQUEST_BUDGET);

/// The two halves of a connection, as handlers borrow them.
pub(crate) type Conn<'a> = (&'a mut OwnedReadHalf, &'a mut OwnedWriteHalf);

/// A request read, with its share of the budget: the share goes back
/// when this is dropped, once the request was handled.
pub(crate) struct Incoming {
    /// The request.
    pub(crate) req: Request,
    /// Its blob.
    pub(crate) blob: Vec<u8>,
    _reserved: SemaphorePermit<'static>,
}

/// Reads one request and its blob (the budget share goes back at once:
/// for the small requests inside an operation, such as a receive's acks).
pub(crate) async fn read_request(rd: &mut OwnedReadHalf) -> Result<(Request, Vec<u8>), FrameError> {
    let first = read_first(rd).await?;
    let Incoming { req, blob, .. } = read_rest(rd, first).await?;
    Ok((req, blob))
}

/// Waits up to `idle` for a client's next request; `Ok(None)` if none
/// began in that time.
pub(crate) async fn next_request(
    rd: &mut OwnedReadHalf,
    idle: Duration,
) -> Result<Option<Incoming>, FrameError> {
    let Ok(first) = tokio::time::timeout(idle, read_first(rd)).await else {
        return Ok(None);
    };
    read_rest(rd, first?).await.map(Some)
}

/// The first bytes of a frame: at least one.
struct First {
    prefix: [u8; 8],
    got: usize,
}

async fn read_first(rd: &mut OwnedReadHalf) -> Result<First, FrameError> {
    let mut prefix = [0u8; 8];
    let got = rd.read(&mut prefix).await.map_err(FrameError::Io)?;
    if got == 0 {
        return Err(FrameError::Closed);
    }
    Ok(First { prefix, got })
}

async fn read_rest(rd: &mut OwnedReadHalf, first: First) -> Result<Incoming, FrameError> {
    let First { mut prefix, got } = first;
    let rest = async {
        rd.read_exact(&mut prefix[got..]).await?;
        let (h, b) = check_lengths(prefix)?;
        // A blob over a request's limit is never read: not reserved.
        let wanted = if b > MAX_REQUEST_BLOB { h } else { h + b };
        let reserved = tokio::time::timeout(BUDGET_WAIT, reserve(wanted))
            .await
            .map_err(|_| FrameError::Busy)??;
        let mut header = vec![0u8; h];
        rd.read_exact(&mut header).await?;
        let req = parse_request(&header)?;
        drop(header);
        if b > MAX_REQUEST_BLOB {
            return Err(match req.op {
                Op::Start(_) => FrameError::Environment(EnvError::TooLarge(b)),
                _ => FrameError::TooLarge("a request body", b),
            });
        }
        let mut blob = vec![0u8; b];
        rd.read_exact(&mut blob).await?;
        Ok::<_, FrameError>(Incoming {
            req,
            blob,
            _reserved: reserved,
        })
    };
    tokio::time::timeout(FRAME_TIMEOUT, rest)
        .await
        .map_err(|_| FrameError::Io(std::io::ErrorKind::TimedOut.into()))?
}

async fn reserve(bytes: usize) -> Result<SemaphorePermit<'static>, FrameError> {
    // Both limits are far below u32::MAX (checked by `check_lengths`).
    let n = u32::try_from(bytes).map_err(|_| FrameError::TooLarge("a request", bytes))?;
    IN_FLIGHT
        .acquire_many(n)
        .await
        .map_err(|_| FrameError::Busy)
}

/// Writes one response.
pub(crate) async fn send(
    wr: &mut OwnedWriteHalf,
    resp: &Response,
    blob: &[u8],
) -> std::io::Result<()> {
    let bytes = encode(resp, blob).map_err(std::io::Error::other)?;
    crate::reported::before_report();
    wr.write_all(&bytes).await
}

/// Writes an error response.
pub(crate) async fn reply_error(
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
pub(crate) async fn client_gone(rd: &mut OwnedReadHalf) {
    let mut b = [0u8; 1];
    let _ = rd.read(&mut b).await;
}
