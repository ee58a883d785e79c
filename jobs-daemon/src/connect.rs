//! `connect`: detached remote jobs re-attach now rather than after their
//! backoff.

use std::time::Duration;

use jobs_core::{JobId, JobInfo};
use jobs_protocol::ErrorCode;

use crate::fail::Fail;
use crate::shared::Daemon;

/// How long `connect` waits for one host's attempt (a connect timeout and
/// the start of the stream).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(30);

/// Makes the detached remote jobs among `ids` (or their children) try to
/// re-attach now, waits for the attempts, and returns the jobs' rows.
pub(crate) async fn connect(d: &Daemon, ids: Vec<JobId>) -> Result<Vec<JobInfo>, Fail> {
    let mut tasks = Vec::new();
    for &id in &ids {
        let job = d.session.info(id)?;
        let mut targets = vec![job.clone()];
        targets.extend(job.children.iter().filter_map(|c| d.session.info(*c).ok()));
        let mut any = false;
        for t in targets {
            let remote_child = t.type_name == jobs_remote::TYPE_NAME && t.children.is_empty();
            if !t.detached || !remote_child || t.state.is_finished() {
                continue;
            }
            any = true;
            let remote = std::sync::Arc::clone(&d.remote);
            let instance = t.instance_id.to_string();
            tasks.push(tokio::spawn(async move {
                remote.connect_now(&instance, ATTEMPT_LIMIT).await
            }));
        }
        if !any {
            return Err(Fail::new(
                ErrorCode::Failed,
                format!(
                    "job {id} ({}) has no detached remote job that is still going: nothing to connect",
                    job.name
                ),
            ));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        rows.push(d.session.info(id)?);
    }
    Ok(rows)
}
