//! What removing a detached job does on its hosts: each child's folder
//! that may still be there (its end was not read, or its stop did not reach
//! the host) is deleted, and whatever still runs of it ended first, over a
//! new connection, best effort and within a bound (a removal never waits
//! long for a host that does not answer).

use std::sync::Arc;
use std::time::Duration;

use crate::attach::{run_op, GONE};
use crate::connect;
use crate::detached::{self, Checkpoint};
use crate::options::SshOptions;
use crate::spec::HostTask;

/// Seconds between SIGTERM and SIGKILL for what still runs of a removed
/// job: its session counts it over already.
const GRACE_SECS: u64 = 1;

/// Whether a detached child whose stored checkpoint is `checkpoint` may
/// have left its folder on its host: it was launched (it has a
/// checkpoint) and its folder was not seen deleted.
pub(crate) fn may_be_left(checkpoint: Option<&[u8]>) -> bool {
    checkpoint.is_some_and(|b| !Checkpoint::decode(b).cleaned)
}

/// Ends what still runs of the detached child `id` on `host` and deletes
/// its folder, each step bounded by about `limit`. `Err`: why the host
/// kept it.
pub(crate) fn forget(
    host: &str,
    id: &str,
    checkpoint: Option<&[u8]>,
    options: &Arc<SshOptions>,
    limit: Duration,
) -> Result<(), String> {
    let cp = checkpoint.map(Checkpoint::decode).unwrap_or_default();
    let task = HostTask {
        host: host.to_string(),
        command: String::new(),
        caller: cp.caller,
        detached: true,
    };
    let options = task.caller.over(options);
    let mut r = detached::resolve(&task, &options).map_err(|f| f.reason)?;
    r.connect_timeout = r.connect_timeout.min(limit);
    let c = connect::connect(&r).map_err(|e| e.to_string())?;
    let args = [GRACE_SECS.to_string()];
    let answer = run_op(
        &c.session,
        "stop",
        id,
        &args,
        b"",
        limit + Duration::from_secs(GRACE_SECS),
    );
    connect::close(c, answer.is_ok());
    match answer {
        Ok(a) if a.status == 0 || a.status == GONE => Ok(()),
        Ok(a) => Err(format!(
            "the cleanup failed (status {}): {}",
            a.status,
            String::from_utf8_lossy(&a.stderr).trim()
        )),
        Err(why) => Err(why),
    }
}
