//! One client connection on the daemon's side: check who it is, then read
//! requests and answer them until the client closes it or sits idle
//! between requests past the daemon's idle timeout.
//!
//! A frame that is too large, cut short, or does not parse gets an error
//! reply where one can still be framed, and the connection closes; nothing a
//! client sends can take the daemon down or hold up another connection.

use std::sync::Arc;

use jobs_protocol::{encode, ErrorCode, FrameError, Response};
use tokio::net::UnixStream;
use tracing::{debug, warn};

use crate::handle::handle;
use crate::shared::Daemon;
use crate::wire::{next_request, reply_error, Incoming};

/// Answers a connection past the cap with an error and closes it. The
/// reply is small enough for a fresh socket's buffer: it never waits.
pub(crate) fn refuse(stream: &UnixStream, limit: usize) {
    let reply = Response::Error {
        kind: ErrorCode::Failed,
        message: format!(
            "the session daemon has too many connections ({limit}, JOBCTL_MAX_CONNECTIONS); try again when other commands have ended"
        ),
    };
    if let Ok(bytes) = encode(&reply, &[]) {
        let _ = stream.try_write(&bytes);
    }
    debug!("refused a connection over the cap of {limit}");
}

/// Serves one connection until the client closes it, breaks the protocol,
/// or sits idle between requests for longer than the daemon allows.
pub(crate) async fn connection(stream: UnixStream, d: Arc<Daemon>) {
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
        let Incoming { req, blob, .. } = match next_request(&mut rd, d.idle).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                debug!("closed an idle connection");
                return;
            }
            Err(FrameError::Closed) => return,
            Err(FrameError::Io(e)) => {
                debug!("connection dropped: {e}");
                return;
            }
            Err(e @ (FrameError::Environment(_) | FrameError::Busy)) => {
                warn!("request refused: {e}");
                let _ = reply_error(&mut wr, ErrorCode::Failed, &e.to_string()).await;
                return;
            }
            Err(e) => {
                warn!("bad request: {e}");
                let _ = reply_error(&mut wr, ErrorCode::Protocol, &e.to_string()).await;
                return;
            }
        };
        match handle(&d, req.op, &blob, (&mut rd, &mut wr)).await {
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
