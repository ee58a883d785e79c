//! `start --each`: sending a batch's items. An input that fits in
//! [`ITEMS_CHUNK`] travels in the `start` message itself; a larger one is
//! streamed (`Op::StartStreamed`, then `Op::Items` frames of at most
//! [`ITEMS_CHUNK`] bytes), so a million lines never sit whole in one
//! message nor in the client's memory.

use std::io::{self, Read};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use jobs_protocol::{Op, StartRequest, ITEMS_CHUNK, MAX_STREAMED_ITEMS};

use crate::client::Client;
use crate::exit::{self, Exit};

/// FILE of option `flag` opened for reading (`-`: standard input), and
/// how to name it; a file that cannot be opened is a usage error.
pub(crate) fn open_input(file: &Path, flag: &str) -> Result<(Box<dyn Read>, String)> {
    if file.as_os_str() == "-" {
        return Ok((Box::new(io::stdin().lock()), "standard input".into()));
    }
    let f = std::fs::File::open(file).map_err(|e| {
        anyhow!(Exit::new(
            exit::USAGE,
            format!("{flag}: cannot read {}: {e}", file.display())
        ))
    })?;
    Ok((Box::new(f), file.display().to_string()))
}

/// Sends the batch `req`, whose blob so far is the environment `blob`,
/// with the items of FILE (`-`: standard input). The answer is the
/// caller's to read.
pub(crate) fn send_batch(
    c: &mut Client,
    req: StartRequest,
    mut blob: Vec<u8>,
    file: &Path,
) -> Result<()> {
    let (mut input, shown) = open_input(file, "--each")?;
    let context = || format!("cannot read the items from {shown}");
    let env_len = blob.len();
    let whole = read_chunk(&mut input, &mut blob).with_context(context)?;
    if whole {
        return c.send(Op::Start(Box::new(req)), &blob);
    }
    c.send(Op::StartStreamed(Box::new(req)), &blob)?;
    let mut sent = blob.len() - env_len;
    loop {
        blob.clear();
        let end = read_chunk(&mut input, &mut blob).with_context(context)?;
        sent += blob.len();
        if sent > MAX_STREAMED_ITEMS {
            // Closing the connection drops what the daemon was sent.
            return Err(anyhow!(Exit::new(
                exit::USAGE,
                format!(
                    "--each: the items from {shown} are over the {} MiB one batch takes",
                    MAX_STREAMED_ITEMS >> 20
                )
            )));
        }
        c.send(Op::Items { end }, &blob)?;
        if end {
            return Ok(());
        }
    }
}

/// Appends up to [`ITEMS_CHUNK`] bytes of `input` to `out`; true once the
/// input ended within them.
fn read_chunk(input: &mut dyn Read, out: &mut Vec<u8>) -> io::Result<bool> {
    let read = input.take(ITEMS_CHUNK as u64 + 1).read_to_end(out)?;
    Ok(read <= ITEMS_CHUNK)
}
