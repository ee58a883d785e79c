//! `events`: the session's state changes, stored ones first, then (with
//! `follow`) live ones as they happen, pushed, never polled.
//!
//! No gap and no repeat between the two parts: the connection subscribes
//! first, then reads the store (which holds every event published before
//! the subscription, buffered ones included), then takes live events,
//! skipping those numbered at or below the last one sent. A subscriber that
//! falls behind the live channel reads what it missed back from the store,
//! the same way.

use jobs_core::{JobEvent, Session};
use jobs_protocol::{EventsRequest, Response};

use crate::fail::Fail;
use crate::shared::Daemon;
use crate::wire::{client_gone, send, Conn};

/// Events per page read from the store.
const PAGE: usize = 1000;

/// Events per live page sent at once (those already waiting).
const LIVE_PAGE: usize = 256;

/// Answers `events`; `Ok(false)` closes the connection.
pub(crate) async fn serve(
    d: &Daemon,
    req: EventsRequest,
    (rd, wr): Conn<'_>,
) -> Result<bool, Fail> {
    let mut live = req.follow.then(|| d.session.subscribe());
    let mut cursor = Cursor {
        last: req.since.unwrap_or(0),
        ids: req.ids,
    };
    if req.live_only && live.is_some() {
        cursor.last = d.session.last_event();
        if send(wr, &Response::Events(Vec::new()), &[]).await.is_err() {
            return Ok(false);
        }
    }
    if !send_stored(&mut cursor, &d.session, wr).await? {
        return Ok(false);
    }
    let Some(live) = live.as_mut() else {
        return Ok(send(wr, &Response::End(Vec::new()), &[]).await.is_ok());
    };
    loop {
        let first = tokio::select! {
            ev = live.next() => ev,
            _ = client_gone(rd) => return Ok(false),
            _ = d.session_ended() => {
                // The daemon is stopping: every event is in the store by
                // now; the reader gets the rest, then the end.
                if !send_stored(&mut cursor, &d.session, wr).await? {
                    return Ok(false);
                }
                let _ = send(wr, &Response::End(Vec::new()), &[]).await;
                return Ok(false);
            }
        };
        let mut page = Vec::new();
        let mut lagged = false;
        let mut next = first;
        loop {
            match next {
                // The session is gone: the daemon is ending.
                None => return Ok(false),
                Some(Ok(ev)) => page.push(ev),
                Some(Err(lagged_by)) => {
                    tracing::info!("an events reader {lagged_by}; sending them from the store");
                    lagged = true;
                    break;
                }
            }
            if page.len() >= LIVE_PAGE {
                break;
            }
            next = match live.try_next() {
                Some(n) => Some(n),
                None => break,
            };
        }
        let out = cursor.live(page);
        if !out.is_empty() && send(wr, &Response::Events(out), &[]).await.is_err() {
            return Ok(false);
        }
        if lagged {
            // What the channel dropped is in the store: sent from there in
            // order; the live ones it already holds are skipped as sent.
            if !send_stored(&mut cursor, &d.session, wr).await? {
                return Ok(false);
            }
        }
    }
}

/// Sends the stored events after `cursor`, page by page; `Ok(false)` when
/// the reader is gone.
async fn send_stored(
    cursor: &mut Cursor,
    session: &Session,
    wr: &mut tokio::net::unix::OwnedWriteHalf,
) -> Result<bool, Fail> {
    loop {
        let page = cursor.stored(session)?;
        if page.is_empty() {
            return Ok(true);
        }
        if send(wr, &Response::Events(page), &[]).await.is_err() {
            return Ok(false);
        }
    }
}

/// Where a reader is: the last number sent (or skipped), and its filter.
struct Cursor {
    last: u64,
    ids: Vec<jobs_core::JobId>,
}

impl Cursor {
    fn wanted(&self, ev: &JobEvent) -> bool {
        self.ids.is_empty() || self.ids.contains(&ev.id)
    }

    /// The next stored events after the cursor that pass the filter: empty
    /// once the store has no more (a page of only filtered-out events is
    /// skipped, not returned empty).
    fn stored(&mut self, session: &Session) -> Result<Vec<JobEvent>, Fail> {
        loop {
            let page = session.events_after(self.last, PAGE)?;
            let Some(last) = page.last().map(|e| e.seq) else {
                return Ok(Vec::new());
            };
            self.last = last;
            let out: Vec<JobEvent> = page.into_iter().filter(|e| self.wanted(e)).collect();
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Live events not sent yet that pass the filter.
    fn live(&mut self, page: Vec<JobEvent>) -> Vec<JobEvent> {
        let mut out = Vec::with_capacity(page.len());
        for ev in page {
            if ev.seq <= self.last {
                continue;
            }
            self.last = ev.seq;
            if self.wanted(&ev) {
                out.push(ev);
            }
        }
        out
    }
}
