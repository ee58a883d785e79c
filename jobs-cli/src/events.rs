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
        }),
        &[],
    )?;
    let mut out = io::stdout().lock();
    loop {
        match c.recv()?.0 {
            Response::Events(page) => {
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
            Response::End(_) => return Ok(exit::SUCCESS),
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
