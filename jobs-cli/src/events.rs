//! `jobctl events`: the session's state changes, oldest first; with
//! `--follow`, on as they happen (the daemon pushes them).

use std::io::{self, Write};

use anyhow::{Context, Result};
use jobs_core::JobEvent;
use jobs_protocol::home::Home;
use jobs_protocol::{EventsRequest, Op, Response};

use crate::cli::EventsArgs;
use crate::client::Client;
use crate::exit;

/// Runs `events`; returns the exit code.
pub(crate) fn events(home: &Home, a: EventsArgs) -> Result<i32> {
    let mut c = Client::connect_or_start(home, &[])?;
    c.send(
        Op::Events(EventsRequest {
            ids: a.ids,
            since: a.since,
            follow: a.follow,
            live_only: false,
        }),
        &[],
    )?;
    let mut out = io::stdout().lock();
    let mut last = a.since.unwrap_or(0);
    loop {
        let reply = c.recv().with_context(|| {
            format!(
                "the session daemon went away after event {last}; \
                 `jobctl events --since {last}` goes on from there"
            )
        })?;
        match reply.0 {
            Response::Events(page) => {
                last = page.last().map_or(last, |e| e.seq);
                let written = page
                    .iter()
                    .try_for_each(|ev| write_event(&mut out, ev, a.json))
                    .and_then(|()| out.flush());
                match written {
                    Ok(()) => {}
                    // A reader that went away (`| head`) ends it quietly.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(exit::SUCCESS),
                    Err(e) => return Err(e).context("cannot write to stdout"),
                }
            }
            Response::End(_) => {
                if a.follow {
                    eprintln!(
                        "jobctl: the session daemon stopped after event {last}; \
                         `jobctl events --since {last} --follow` goes on from there"
                    );
                }
                return Ok(exit::SUCCESS);
            }
            other => anyhow::bail!("unexpected reply from the session daemon: {other:?}"),
        }
    }
}

/// One event as a line: JSON, or for people
/// `SEQ TIME ID NAME FROM -> TO [reason: ...] [exit code N]`.
fn write_event(out: &mut impl Write, ev: &JobEvent, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, ev)?;
        return writeln!(out);
    }
    writeln!(out, "{}", human(ev))
}

/// The line people read.
pub(crate) fn human(ev: &JobEvent) -> String {
    let from = ev.from.map_or("(new)".to_string(), |s| s.to_string());
    let to = ev.to.map_or("(removed)".to_string(), |s| s.to_string());
    let mut line = format!(
        "{:>6}  {}  {:>4}  {}  {} -> {}",
        ev.seq,
        humantime::format_rfc3339_millis(ev.time),
        ev.id,
        ev.name,
        from,
        to
    );
    if let Some(r) = &ev.reason {
        line.push_str(&format!("  reason: {r}"));
    }
    if let Some(code) = ev.exit_code {
        line.push_str(&format!("  exit code {code}"));
    }
    line
}

/// `receive --write-events`: the received jobs' state changes, written
/// among their records. A job's records come after its start and before
/// its end, so its events are written as they come, before the records of
/// the page that follows them, except the event of its end (a finished
/// state), which is held until every record was written: at the end of
/// the receive. Events come from a second connection to the daemon: the
/// stored ones, then (with `--wait`) live ones, read by a thread; the end
/// reads the store once more, so no event that happened before the end is
/// missed, and none is written twice.
pub(crate) struct EventFeed {
    home: Home,
    ids: Vec<u64>,
    rx: std::sync::mpsc::Receiver<JobEvent>,
    /// Ends of jobs, written last.
    held: Vec<JobEvent>,
    /// The highest number written or held.
    last: u64,
    /// Events read before the receive began, to write first.
    ready_first: Vec<JobEvent>,
}

impl EventFeed {
    /// Starts reading the events of `ids` (following them if `follow`).
    pub(crate) fn start(home: &Home, ids: Vec<u64>, follow: bool) -> Result<EventFeed> {
        let (tx, rx) = std::sync::mpsc::channel();
        // The stored events, read here before any record: a job that
        // already runs has its start written before its first record.
        let first = stored_events(home, &ids, None)?;
        if follow {
            // Then the live ones, from the last stored one on, read by a
            // thread.
            let mut c = Client::connect_or_start(home, &[])?;
            c.send(
                Op::Events(EventsRequest {
                    ids: ids.clone(),
                    since: Some(first.last().map_or(0, |e| e.seq)),
                    follow: true,
                    live_only: false,
                }),
                &[],
            )?;
            std::thread::spawn(move || {
                while let Ok((Response::Events(page), _)) = c.recv() {
                    for ev in page {
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        let mut feed = EventFeed {
            home: home.clone(),
            ids,
            rx,
            held: Vec::new(),
            last: 0,
            ready_first: Vec::new(),
        };
        feed.ready_first = feed.held_or_ready(first);
        Ok(feed)
    }

    /// Sorts new events into those to write now (returned) and ends to hold.
    fn held_or_ready(&mut self, events: Vec<JobEvent>) -> Vec<JobEvent> {
        let mut ready = Vec::new();
        for ev in events {
            if ev.seq <= self.last {
                continue;
            }
            self.last = ev.seq;
            if ev.to.is_none_or(|s| s.is_finished()) {
                self.held.push(ev);
            } else {
                ready.push(ev);
            }
        }
        // Those read before any record, when not following.
        let mut pending = std::mem::take(&mut self.ready_first);
        pending.extend(ready);
        pending
    }

    /// The events to write before the next records: those that came.
    pub(crate) fn ready(&mut self) -> Vec<JobEvent> {
        let came: Vec<JobEvent> = self.rx.try_iter().collect();
        self.held_or_ready(came)
    }

    /// The events left at the end of the receive, in order: those that
    /// came, those stored since, and the held ends.
    pub(crate) fn rest(&mut self) -> Result<Vec<JobEvent>> {
        let mut out = self.ready();
        let stored = stored_events(&self.home, &self.ids, Some(self.last))?;
        out.extend(self.held_or_ready(stored));
        out.append(&mut self.held);
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }
}

/// The stored events of `ids` (all jobs when empty) after `since`, read
/// on a connection of their own.
fn stored_events(home: &Home, ids: &[u64], since: Option<u64>) -> Result<Vec<JobEvent>> {
    let mut c = Client::connect_or_start(home, &[])?;
    c.send(
        Op::Events(EventsRequest {
            ids: ids.to_vec(),
            since,
            follow: false,
            live_only: false,
        }),
        &[],
    )?;
    let mut out = Vec::new();
    loop {
        match c.recv()?.0 {
            Response::Events(page) => out.extend(page),
            Response::End(_) => return Ok(out),
            other => anyhow::bail!("unexpected reply from the session daemon: {other:?}"),
        }
    }
}
