//! A batch too large for one message (`Op::StartStreamed`): its items
//! come in `Op::Items` frames after the request, each read within the
//! request budget as any frame is; once the last came, the batch starts as
//! a `start` of the whole would.

use jobs_core::JobId;
use jobs_protocol::{ErrorCode, Op, StartRequest, MAX_STREAMED_ITEMS};
use tokio::net::unix::OwnedReadHalf;

use crate::fail::Fail;
use crate::restart;
use crate::shared::Daemon;
use crate::wire::read_request;

/// `Op::StartStreamed`: reads the rest of the batch's items from the
/// connection (`Op::Items` frames, each held to the request budget while
/// it is read) after `first` (the environment and the first items), then
/// starts the batch as a `start` of the whole.
pub(crate) async fn start(
    d: &Daemon,
    req: StartRequest,
    first: &[u8],
    rd: &mut OwnedReadHalf,
) -> Result<JobId, Fail> {
    let Some(each) = &req.each else {
        return Err(Fail::new(
            ErrorCode::Protocol,
            "a streamed start is a batch's: it has no items",
        ));
    };
    if req.input_len.is_some() {
        return Err(Fail::new(
            ErrorCode::Usage,
            "--input does not go with --each: a batch's children read no standard input",
        ));
    }
    let limit = usize::try_from(each.env_len)
        .unwrap_or(usize::MAX)
        .saturating_add(MAX_STREAMED_ITEMS);
    let mut blob = first.to_vec();
    loop {
        let (next, chunk) = read_request(rd).await.map_err(|e| {
            Fail::new(
                ErrorCode::Protocol,
                format!("the batch's items stopped coming: {e}"),
            )
        })?;
        let Op::Items { end } = next.op else {
            return Err(Fail::new(
                ErrorCode::Protocol,
                "a streamed start's items were cut by another request",
            ));
        };
        if blob.len() + chunk.len() > limit {
            return Err(Fail::new(
                ErrorCode::Protocol,
                format!(
                    "a batch's items are over the {} MiB one batch takes",
                    MAX_STREAMED_ITEMS >> 20
                ),
            ));
        }
        blob.extend_from_slice(&chunk);
        if end {
            break;
        }
    }
    restart::start(d, req, &blob, None)
}
