//! Starting a job from a `start` request, keeping the request, and
//! starting it again (`jobctl restart`).
//!
//! Every top-level job's request is kept in the store as its caller sent it
//! (work, type, hosts, options, the directory and the whole environment of
//! the caller, a batch's items, the job's input), so that `restart` replays
//! exactly what the first start ran, also after a daemon restart or crash.
//!
//! What a restart keeps and drops:
//! - kept: the type, the work, the hosts, the items, the directory and the
//!   environment as captured at the first start, the name, the throttle,
//!   the time limit, the retries and their delay, the input, `--detached`,
//!   `--on-finish`;
//! - dropped: `--after` and `--after-any`. A restart is asked for once the
//!   job is over, so the jobs it waited for are long decided (or removed):
//!   waiting again would either run at once or fail for a dependency that
//!   has nothing to do with this run. The new job starts at once.
//!
//! The kept request also makes a waiting batch's children again when the
//! daemon starts after a restart or a crash ([`rebuild_batch`]), so that
//! the batch goes on waiting.
//!
//! Only a finished job restarts (a running one is refused: stop it or wait
//! for it first); a child restarts through its parent. `--failed` is for a
//! batch's parent: its Failed and Stopped children run again in place.

use std::sync::atomic::Ordering;

use jobs_core::{default_batch_throttle, Halt, JobId, JobInfo, JobState, RebuiltBatch, BATCH_TYPE};
use jobs_protocol::{check_env, encode, read_frame, ErrorCode, RestartRequest, StartRequest};
use jobs_store_sqlite::SqliteStore;

use crate::fail::Fail;
use crate::shared::Daemon;
use crate::{batch, executors};

/// Starts the job of `req` (`blob`: its environment, items and input),
/// keeps the request for a later restart, and returns the job's id.
/// `restarted_from` names the job it restarts, if it does.
pub(crate) fn start(
    d: &Daemon,
    mut req: StartRequest,
    blob: &[u8],
    restarted_from: Option<JobId>,
) -> Result<JobId, Fail> {
    if d.closing.load(Ordering::SeqCst) {
        return Err(Fail::new(ErrorCode::Failed, "the session is ending"));
    }
    let parts = req
        .parts(blob)
        .map_err(|e| Fail::new(ErrorCode::Protocol, e))?;
    let (env, items, input) = (parts.env, parts.items, parts.input);
    check_env(env).map_err(|e| Fail::new(ErrorCode::Failed, e.to_string()))?;
    let kept = encode(&req, blob);
    // A waiting batch is made again from its request after a crash: the
    // request is on disk before the caller hears of the batch.
    let waiting_batch = req.each.is_some() && !(req.after.is_empty() && req.after_any.is_empty());
    let on_finish = req.on_finish.take();
    let id = match req.each.take() {
        Some(_) if input.is_some() => {
            return Err(Fail::new(
                ErrorCode::Usage,
                "--input does not go with --each: a batch's children read no standard input",
            ))
        }
        Some(each) => d.hooks.start_with(on_finish, || {
            batch::start(d, req, each, (env, items), restarted_from)
        })?,
        None => {
            let mut spec = executors::job_spec(req, env, input)?;
            spec.restarted_from = restarted_from;
            d.hooks
                .start_with(on_finish, || Ok(d.session.start(spec)?))?
        }
    };
    // The job runs whatever happens here: a request that cannot be kept
    // only means it cannot be restarted, which `restart` then says.
    match kept {
        Ok(bytes) => {
            let saved = d.store.save_request(id, &bytes).and_then(|()| {
                if waiting_batch {
                    d.store.flush()?;
                }
                Ok(())
            });
            if let Err(e) = saved {
                tracing::warn!(job = id, "cannot keep the job's start request: {e}");
            }
        }
        Err(e) => tracing::warn!(job = id, "cannot encode the job's start request: {e}"),
    }
    Ok(id)
}

/// Makes the children of a batch that waited when the previous session
/// ended, from the start request kept for it: one spec per item, as the
/// first start made them, and its halt rule (see jobs-core's
/// `Session::rebuild_waiting_batches`). `None` when no usable request was
/// kept: the batch then ends with its session.
pub(crate) fn rebuild_batch(store: &SqliteStore, info: &JobInfo) -> Option<RebuiltBatch> {
    let id = info.id;
    let cannot = |why: &str| {
        tracing::warn!(
            job = id,
            "a waiting batch cannot wait again ({why}): it ends with its session"
        );
        None
    };
    let bytes = match store.request(id) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return cannot("no start request was kept for it"),
        Err(e) => return cannot(&e.to_string()),
    };
    let (req, blob): (StartRequest, Vec<u8>) = match read_frame(&mut bytes.as_slice()) {
        Ok(frame) => frame,
        Err(e) => return cannot(&format!("its start request is unreadable: {e}")),
    };
    let Some(each) = req.each.clone() else {
        return cannot("its start request is not a batch's");
    };
    let parts = match req.parts(&blob) {
        Ok(parts) => parts,
        Err(e) => return cannot(&e),
    };
    let (env, items) = (parts.env.to_vec(), parts.items.to_vec());
    // Every item of the request: a row that names fewer children (a crash
    // before they were all written) is then refused as a whole.
    let indices: Vec<usize> = (0..batch::item_spans(&items, each.null).len()).collect();
    let halt = each.halt.as_deref().and_then(|h| h.parse::<Halt>().ok());
    match batch::rerun_specs(req, &each, (&env, &items), info.instance_id, &indices) {
        Ok(children) => Some(RebuiltBatch { children, halt }),
        Err(f) => cannot(&f.message),
    }
}

/// `restart`: every job is checked before any starts; then each starts
/// again as a new job (or, with `failed`, reruns its failed children).
/// Returns the new jobs' rows (with `failed`, the batches' rows).
pub(crate) fn restart(d: &Daemon, r: RestartRequest) -> Result<Vec<JobInfo>, Fail> {
    let mut plans = Vec::with_capacity(r.ids.len());
    for &id in &r.ids {
        plans.push(plan(d, id, r.failed)?);
    }
    let mut rows = Vec::with_capacity(plans.len());
    for (info, req, blob) in plans {
        let row = if r.failed {
            rerun_failed(d, &info, req, &blob)?
        } else {
            start_again(d, &info, req, &blob)?
        };
        rows.push(row);
    }
    Ok(rows)
}

/// Checks that job `id` can restart and reads its stored request.
fn plan(d: &Daemon, id: JobId, failed: bool) -> Result<(JobInfo, StartRequest, Vec<u8>), Fail> {
    let info = d.session.info(id)?;
    let name = &info.name;
    if let Some(p) = info.parent {
        return Err(Fail::new(
            ErrorCode::Usage,
            format!(
                "job {id} ({name}) is a child of job {p}: restart its parent, or rerun its failed children with `restart {p} --failed`"
            ),
        ));
    }
    if failed && info.type_name != BATCH_TYPE {
        return Err(Fail::new(
            ErrorCode::Usage,
            format!(
                "--failed reruns a batch's children in place: job {id} ({name}) is a {}, not a batch (restart it without --failed)",
                info.type_name
            ),
        ));
    }
    if !info.state.is_finished() {
        return Err(Fail::new(
            ErrorCode::Failed,
            format!(
                "cannot restart job {id} ({name}): it is {}; wait for it or stop it first",
                info.state
            ),
        ));
    }
    let none = || {
        Fail::new(
            ErrorCode::Failed,
            format!("cannot restart job {id} ({name}): the session kept no start request for it"),
        )
    };
    let bytes = d
        .store
        .request(id)
        .map_err(|e| Fail::from(jobs_core::Error::from(e)))?
        .ok_or_else(none)?;
    let (req, blob): (StartRequest, Vec<u8>) = read_frame(&mut bytes.as_slice()).map_err(|e| {
        Fail::new(
            ErrorCode::Failed,
            format!(
                "cannot restart job {id} ({name}): its stored start request is unreadable: {e}"
            ),
        )
    })?;
    if failed && req.each.is_none() {
        return Err(none());
    }
    Ok((info, req, blob))
}

/// Starts `info`'s job again as a new job from its request `req`.
fn start_again(
    d: &Daemon,
    info: &JobInfo,
    mut req: StartRequest,
    blob: &[u8],
) -> Result<JobInfo, Fail> {
    req.after.clear();
    req.after_any.clear();
    let id = start(d, req, blob, Some(info.id))?;
    Ok(d.session.info(id)?)
}

/// Runs the Failed and Stopped children of the batch `info` again, in
/// place, from the batch's request `req`; returns the batch's row.
fn rerun_failed(
    d: &Daemon,
    info: &JobInfo,
    req: StartRequest,
    blob: &[u8],
) -> Result<JobInfo, Fail> {
    let Some(each) = req.each.clone() else {
        return Ok(info.clone());
    };
    let parts = req
        .parts(blob)
        .map_err(|e| Fail::new(ErrorCode::Failed, e))?;
    let (env, items) = (parts.env.to_vec(), parts.items.to_vec());
    let mut ids = Vec::new();
    let mut indices = Vec::new();
    for (index, &c) in info.children.iter().enumerate() {
        let state = d.session.info(c).map(|ci| ci.state);
        if matches!(state, Ok(JobState::Failed | JobState::Stopped)) {
            ids.push(c);
            indices.push(index);
        }
    }
    if ids.is_empty() {
        return Ok(info.clone());
    }
    let throttle = req.throttle.unwrap_or_else(default_batch_throttle);
    // As the first start read it (a restored batch has lost it).
    let halt = each.halt.as_deref().and_then(|h| h.parse::<Halt>().ok());
    let specs = batch::rerun_specs(req, &each, (&env, &items), info.instance_id, &indices)?;
    d.session.rerun_children(
        info.id,
        ids.into_iter().zip(specs).collect(),
        Some(throttle),
        halt,
    )?;
    Ok(d.session.info(info.id)?)
}
