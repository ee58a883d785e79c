//! A connection's framing on the daemon's side: reading requests, writing
//! responses, noticing a client that went away. The one parser of requests
//! is [`jobs_protocol::parse_request`]; this reads the bytes of a frame
//! without blocking the runtime, with a deadline for a frame begun.

use std::time::Duration;

use jobs_protocol::{
    check_lengths, encode, parse_request, ErrorCode, FrameError, Request, Response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// How long the rest of a frame may take once its first byte came.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// The two halves of a connection, as handlers borrow them.
pub(crate) type Conn<'a> = (&'a mut OwnedReadHalf, &'a mut OwnedWriteHalf);

/// Reads one request and its blob.
pub(crate) async fn read_request(rd: &mut OwnedReadHalf) -> Result<(Request, Vec<u8>), FrameError> {
    let mut prefix = [0u8; 8];
    let n = rd.read(&mut prefix).await.map_err(FrameError::Io)?;
    if n == 0 {
        return Err(FrameError::Closed);
    }
    let rest = async {
        rd.read_exact(&mut prefix[n..]).await?;
        let (h, b) = check_lengths(prefix)?;
        let mut header = vec![0u8; h];
        rd.read_exact(&mut header).await?;
        let mut blob = vec![0u8; b];
        rd.read_exact(&mut blob).await?;
        Ok::<_, FrameError>((header, blob))
    };
    let (header, blob) = tokio::time::timeout(FRAME_TIMEOUT, rest)
        .await
        .map_err(|_| FrameError::Io(std::io::ErrorKind::TimedOut.into()))??;
    Ok((parse_request(&header)?, blob))
}

/// Writes one response.
pub(crate) async fn send(
    wr: &mut OwnedWriteHalf,
    resp: &Response,
    blob: &[u8],
) -> std::io::Result<()> {
    let bytes = encode(resp, blob).map_err(std::io::Error::other)?;
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
