//! `remove` of a detached remote job: a child's folder may still be on its
//! host (a stop that could not reach it, an exit status that could not be
//! read). Once the job is removed, the remote executor ends what still
//! runs of each such child there and deletes its folder, all hosts at
//! once, each within [`LIMIT`] or so; a host that does not answer leaves
//! its folder, which the caller is told.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobId, Store};
use jobs_remote::SshExecutor;

use crate::shared::Daemon;

/// How long a host gets to answer (connect, then the cleanup, each).
const LIMIT: Duration = Duration::from_secs(5);

/// A detached remote child whose folder may be left on its host.
pub(crate) struct Leftover {
    host: String,
    instance: String,
    checkpoint: Option<Vec<u8>>,
}

/// The detached remote children of job `id` whose folder may be left on
/// their host. Read before the job is removed: its checkpoints go with it.
pub(crate) fn of(d: &Daemon, id: JobId) -> Vec<Leftover> {
    let Ok(job) = d.session.info(id) else {
        return Vec::new();
    };
    if !job.detached || !job.type_name.eq_ignore_ascii_case(jobs_remote::TYPE_NAME) {
        return Vec::new();
    }
    job.children
        .iter()
        .filter_map(|c| d.session.info(*c).ok())
        .filter(|c| c.children.is_empty())
        .filter_map(|c| {
            let checkpoint = d.store.checkpoint(c.id).ok().flatten();
            SshExecutor::detached_leftover(checkpoint.as_deref()).then(|| Leftover {
                host: c.location.to_string(),
                instance: c.instance_id.to_string(),
                checkpoint,
            })
        })
        .collect()
}

/// Cleans up after removed jobs on their hosts; one warning per folder a
/// host may have kept.
pub(crate) async fn clean(d: &Daemon, left: Vec<Leftover>) -> Vec<String> {
    let tasks: Vec<_> = left
        .into_iter()
        .map(|mut l| {
            let remote = Arc::clone(&d.remote);
            tokio::spawn(async move {
                let r = remote
                    .forget_detached(
                        l.host.clone(),
                        l.instance.clone(),
                        l.checkpoint.take(),
                        LIMIT,
                    )
                    .await;
                (l, r)
            })
        })
        .collect();
    let mut warnings = Vec::new();
    for t in tasks {
        if let Ok((l, Err(why))) = t.await {
            let warning = format!(
                "host {}: the removed job's folder ~/.cache/jobctl/jobs/{} may be left there, and what still runs of it: {why}",
                l.host, l.instance
            );
            tracing::warn!("{warning}");
            warnings.push(warning);
        }
    }
    warnings
}
