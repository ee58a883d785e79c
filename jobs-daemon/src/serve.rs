//! One client connection on the daemon's side: check who it is, then read
//! requests and answer them until the client closes it.
//!
//! A frame that is too large, cut short, or does not parse gets an error
//! reply where one can still be framed, and the connection closes; nothing a
//! client sends can take the daemon down or hold up another connection.

use std::sync::Arc;
use std::time::Duration;

use jobs_protocol::{ErrorCode, FrameError};
use tokio::net::UnixStream;
use tracing::{debug, warn};

use crate::handle::handle;
use crate::shared::Daemon;
use crate::wire::{next_request, reply_error, Incoming};

/// How long a connection may sit between requests.
const IDLE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Serves one connection until the client closes it or breaks the protocol.
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
        let Incoming { req, blob, .. } = match next_request(&mut rd, IDLE).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
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
