//! Answers each request of a connection: the operations on the session.

use std::time::Duration;

use jobs_core::{JobFilter, JobId, WaitMode, WaitUntil};
use jobs_protocol::{
    ChildCounts, ErrorCode, ListRequest, Op, RemoveRequest, Response, SelectRequest, WaitRequest,
};
use tokio::net::unix::OwnedReadHalf;

use crate::fail::Fail;
use crate::receive::receive;
use crate::shared::Daemon;
use crate::wire::{client_gone, send, Conn};
use crate::{connect, events, executors, leftovers, restart, streamed};

/// Answers one request; `Ok(false)` closes the connection.
pub(crate) async fn handle(
    d: &Daemon,
    op: Op,
    blob: &[u8],
    (rd, wr): Conn<'_>,
) -> Result<bool, Fail> {
    let resp = match op {
        Op::Start(start) => {
            let id = restart::start(d, *start, blob, None)?;
            Response::Started(d.session.info(id)?)
        }
        Op::StartStreamed(start) => {
            let id = streamed::start(d, *start, blob, rd).await?;
            Response::Started(d.session.info(id)?)
        }
        Op::Items { .. } => {
            return Err(Fail::new(
                ErrorCode::Protocol,
                "items outside a streamed start",
            ));
        }
        Op::List(l) => Response::Jobs(d.session.get(&filter(l))?),
        Op::Show { id } => {
            let job = d.session.info(id)?;
            let rows = |ids: &mut dyn Iterator<Item = &jobs_core::JobId>| -> Vec<_> {
                ids.filter_map(|c| d.session.info(*c).ok()).collect()
            };
            let children = rows(&mut job.children.iter());
            let dependencies = rows(&mut job.after.iter().chain(&job.after_any));
            Response::Shown {
                job,
                children,
                dependencies,
            }
        }
        Op::Progress { id } => Response::Progress(progress(d, id)?),
        Op::Receive(r) => return receive(d, r, (rd, wr)).await,
        Op::Ack { .. } => {
            return Err(Fail::new(ErrorCode::Protocol, "an ack outside a receive"));
        }
        Op::Wait(w) => match wait(d, w, rd).await? {
            Some(r) => r,
            None => return Ok(false),
        },
        Op::Restart(r) => Response::Jobs(restart::restart(d, r)?),
        Op::Stop(s) => {
            let ids = select(d, &s)?;
            let options = jobs_core::StopOptions {
                signal: s.signal,
                grace: s.grace_ms.map(Duration::from_millis),
            };
            // A job removed meanwhile (a `run` following it removes it once
            // it ended) is stopped all the same: it is left out of the rows.
            let gone = |e: &jobs_core::Error| e.kind() == jobs_core::ErrorKind::NoSuchJob;
            for &id in &ids {
                match d.session.request_stop_with(id, options) {
                    Err(e) if !gone(&e) => return Err(e.into()),
                    _ => {}
                }
            }
            let mut rows = Vec::with_capacity(ids.len());
            for &id in &ids {
                match d.session.wait_finished(id).await {
                    Ok(row) => rows.push(row),
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // The rows as they were when each job ended.
            Response::Jobs(rows)
        }
        Op::Suspend(s) => Response::Jobs(d.session.suspend(&select(d, &s)?).await?),
        Op::Resume(s) => Response::Jobs(d.session.resume(&select(d, &s)?).await?),
        Op::Remove(r) => match remove(d, r).await? {
            (ids, warnings) if warnings.is_empty() => Response::Done(ids),
            (ids, warnings) => Response::Removed { ids, warnings },
        },
        Op::Connect(s) => Response::Jobs(connect::connect(d, select(d, &s)?).await?),
        Op::Status => Response::Status {
            pid: std::process::id(),
        },
        Op::Shutdown => {
            d.close().await;
            let _ = send(
                wr,
                &Response::Status {
                    pid: std::process::id(),
                },
                &[],
            )
            .await;
            d.exit.notify_one();
            return Ok(false);
        }
        Op::Plugins => Response::Plugins(d.types.clone()),
        Op::Events(e) => return events::serve(d, e, (rd, wr)).await,
    };
    Ok(send(wr, &resp, &[]).await.is_ok())
}

fn filter(l: ListRequest) -> JobFilter {
    JobFilter {
        ids: l.ids,
        name: l.name,
        state: l.state,
        type_name: l.type_name.map(|t| executors::type_name_of(&t)),
        command: l.command,
        has_more_data: l.has_more_data,
        newest: l.newest,
        include_children: l.include_children,
    }
}

fn select(d: &Daemon, s: &SelectRequest) -> Result<Vec<JobId>, Fail> {
    let jobs = d.session.get(&JobFilter {
        ids: s.ids.clone(),
        name: s.name.clone(),
        state: s.state,
        ..JobFilter::default()
    })?;
    Ok(jobs.into_iter().map(|j| j.id).collect())
}

async fn wait(
    d: &Daemon,
    w: WaitRequest,
    rd: &mut OwnedReadHalf,
) -> Result<Option<Response>, Fail> {
    let mode = if w.any { WaitMode::Any } else { WaitMode::All };
    let timeout = w.timeout_ms.map(Duration::from_millis);
    let until = if w.force {
        WaitUntil::Finished
    } else {
        WaitUntil::Done
    };
    tokio::select! {
        outcome = d.session.wait_until(&w.ids, mode, until, timeout) => {
            let o = outcome?;
            Ok(Some(Response::Waited { done: o.done, timed_out: o.timed_out }))
        }
        _ = client_gone(rd) => Ok(None),
    }
}

/// The jobs removed, and what their hosts may have kept of them.
async fn remove(d: &Daemon, r: RemoveRequest) -> Result<(Vec<JobId>, Vec<String>), Fail> {
    let ids = select(d, &r.select)?;
    let mut removed = Vec::new();
    let mut refused = Vec::new();
    let mut left = Vec::new();
    for id in ids {
        let leftovers = leftovers::of(d, id);
        match d.session.remove(id, r.force).await {
            Ok(()) => {
                removed.push(id);
                left.extend(leftovers);
            }
            Err(e) => match (e.kind(), e.state()) {
                (jobs_core::ErrorKind::NotFinished, Some(state)) => {
                    let name = d.session.info(id).map(|i| i.name).unwrap_or_default();
                    refused.push(format!(
                        "cannot remove job {id} ({name}): it is {state}; stop it first or use --force"
                    ));
                }
                (jobs_core::ErrorKind::NoSuchJob, _) => {}
                _ => refused.push(Fail::from(e).message),
            },
        }
    }
    let warnings = leftovers::clean(d, left).await;
    if refused.is_empty() {
        Ok((removed, warnings))
    } else {
        refused.extend(warnings);
        Err(Fail::new(ErrorCode::Failed, refused.join("; ")))
    }
}

/// Counts the children of `id` by state.
fn progress(d: &Daemon, id: JobId) -> Result<ChildCounts, Fail> {
    let job = d.session.info(id)?;
    let mut counts = ChildCounts {
        total: job.children.len(),
        parent_done: job.state.is_finished(),
        ..ChildCounts::default()
    };
    for c in &job.children {
        let Ok(child) = d.session.info(*c) else {
            // Removed: it is over.
            counts.done += 1;
            continue;
        };
        match child.state {
            s if s.is_finished() => {
                counts.done += 1;
                if s == jobs_core::JobState::Failed {
                    counts.failed += 1;
                }
            }
            jobs_core::JobState::Running | jobs_core::JobState::Blocked => counts.running += 1,
            _ => {}
        }
    }
    Ok(counts)
}
