//! `jobctl top`: the session's job table on the whole terminal, kept live
//! by the session's events.
//!
//! At the start the view subscribes to the events, then reads the
//! top-level rows once; from then on the daemon pushes every state change
//! (`feed`), which the model applies in place, asking the daemon only for
//! the rows it has never seen and for those on screen that changed
//! (`model`). Events are gathered and the screen drawn at most every
//! [`FRAME`] (`draw`), however many arrive. Nothing of this runs, or is
//! even set up, for the other commands: it all starts here.

mod draw;
mod feed;
mod model;
mod screen;

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use jobs_core::JobId;
use jobs_protocol::home::Home;
use jobs_protocol::{EventsRequest, ListRequest, Op, Response};
use ratatui::layout::Rect;

use crate::client::Client;
use crate::exit::{self, Exit};
use feed::{Action, Msg, Want};
use model::{Confirm, Model, Pane};
use screen::Screen;

/// The least time between two draws.
const FRAME: Duration = Duration::from_millis(100);

/// Runs the live view until `q`.
pub(crate) fn run(home: &Home) -> Result<i32> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(anyhow!(Exit::new(
            exit::USAGE,
            "top draws on a terminal, and standard input and output are not both one; use `jobctl list` or `jobctl events --follow` in scripts"
        )));
    }
    let mut c = Client::connect_or_start(home, &[])?;
    let pid = match c.call(Op::Status)? {
        Response::Status { pid } => Some(pid),
        _ => None,
    };
    // Subscribed first, then the table read: no change falls in between.
    let mut stream = Client::connect(home)?.context("the session daemon went away")?;
    stream.send(
        Op::Events(EventsRequest {
            ids: Vec::new(),
            since: None,
            follow: true,
            live_only: true,
        }),
        &[],
    )?;
    // The empty first page: subscribed.
    match stream.recv()?.0 {
        Response::Events(_) => {}
        other => return Err(anyhow!("unexpected reply to events: {other:?}")),
    }
    let rows = match c.call(Op::List(ListRequest::default()))? {
        Response::Jobs(rows) => rows,
        other => return Err(anyhow!("unexpected reply to list: {other:?}")),
    };
    let mut m = Model::new(rows, pid);

    let (tx, rx) = mpsc::channel();
    let want = Arc::new(Want::default());
    spawn("top-events", {
        let tx = tx.clone();
        move || feed::events(stream, tx)
    })?;
    spawn("top-records", {
        let (home, want, tx) = (home.clone(), Arc::clone(&want), tx.clone());
        move || feed::records(home, want, tx)
    })?;
    feed::signals(tx.clone()).context("cannot handle signals")?;
    let mut screen = Screen::enter()?;
    spawn("top-input", {
        let tx = tx.clone();
        move || feed::input(tx)
    })?;
    let theme = draw::Theme::from_env();

    let mut dirty = true;
    let mut drawn = Instant::now()
        .checked_sub(FRAME)
        .unwrap_or_else(Instant::now);
    loop {
        let wait = if dirty {
            FRAME.saturating_sub(drawn.elapsed())
        } else {
            Duration::from_secs(1)
        };
        match rx.recv_timeout(wait) {
            Ok(msg) => {
                let mut next = Some(msg);
                while let Some(msg) = next {
                    match handle(msg, &mut m) {
                        Step::Go => {}
                        Step::Quit => return Ok(exit::SUCCESS),
                        // As a shell reports a command a signal ended.
                        Step::Signal(sig) => return Ok(128 + sig),
                        Step::Act(a) => {
                            let (home, tx) = (home.clone(), tx.clone());
                            spawn("top-action", move || feed::act(home, a, tx))?;
                        }
                        Step::Clear => screen.terminal.clear()?,
                    }
                    next = rx.try_recv().ok();
                }
                dirty = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(exit::SUCCESS),
        }
        if dirty && drawn.elapsed() >= FRAME {
            let size = screen.terminal.size()?;
            m.set_height(draw::table_rows(Rect::new(0, 0, size.width, size.height)));
            if let Err(e) = fetch(&mut c, &mut m) {
                m.note = format!("{e:#}");
            }
            want.set(m.wanted());
            screen
                .terminal
                .draw(|f| draw::draw(f, &m, theme))
                .context("cannot draw on the terminal")?;
            drawn = Instant::now();
            dirty = false;
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .with_context(|| format!("cannot start the {name} thread"))
}

/// What the loop does after a message.
enum Step {
    Go,
    Quit,
    Signal(i32),
    Act(Action),
    Clear,
}

fn handle(msg: Msg, m: &mut Model) -> Step {
    match msg {
        Msg::Input(Event::Key(k)) if k.kind != KeyEventKind::Release => return key(k, m),
        Msg::Input(_) => {}
        Msg::InputLost(e) => {
            m.note = format!("cannot read the terminal: {e}");
            return Step::Quit;
        }
        Msg::Events(evs) => {
            m.events(evs);
        }
        Msg::EventsLost(why) => m.note = format!("not live: {why}"),
        Msg::Records(r) => m.records(r),
        Msg::Done(text) => m.note = text,
        Msg::Signal(sig) => return Step::Signal(sig),
    }
    Step::Go
}

/// Handles a key.
fn key(k: KeyEvent, m: &mut Model) -> Step {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && k.code == KeyCode::Char('c') {
        return Step::Quit;
    }
    if let Some(q) = m.confirm.take() {
        if k.code == KeyCode::Char('y') {
            let (a, what) = match q {
                Confirm::Stop(id) => (Action::Stop(id), "stopping"),
                Confirm::Remove(id) => (Action::Remove(id), "removing"),
            };
            m.note = format!("{what} job {}...", job_of(a));
            return Step::Act(a);
        }
        m.note = "cancelled".into();
        return Step::Go;
    }
    if m.editing {
        let mut f = m.filter.clone();
        match k.code {
            KeyCode::Char(c) if !ctrl => f.push(c),
            KeyCode::Backspace => {
                f.pop();
            }
            KeyCode::Enter => m.editing = false,
            KeyCode::Esc => {
                m.editing = false;
                f.clear();
            }
            _ => {}
        }
        if f != m.filter {
            m.set_filter(f);
        }
        return Step::Go;
    }
    match k.code {
        KeyCode::Char('q') => return Step::Quit,
        KeyCode::Esc if !m.filter.is_empty() => m.set_filter(String::new()),
        KeyCode::Esc => return Step::Quit,
        KeyCode::Char('l') if ctrl => return Step::Clear,
        KeyCode::Up | KeyCode::Char('k') => m.move_by(-1),
        KeyCode::Down | KeyCode::Char('j') => m.move_by(1),
        KeyCode::PageUp => m.move_by(-m.page()),
        KeyCode::PageDown => m.move_by(m.page()),
        KeyCode::Home => m.move_to_end(false),
        KeyCode::End => m.move_to_end(true),
        KeyCode::Right => unfold(m),
        KeyCode::Left => fold(m),
        KeyCode::Enter => {
            let open = m.selected().and_then(|id| m.fold(id));
            match open {
                Some(open) => {
                    m.set_fold(!open);
                }
                None => {
                    m.pane = match m.pane {
                        Pane::Output => Pane::Details,
                        Pane::Details => Pane::Output,
                    }
                }
            }
        }
        KeyCode::Char('/') => m.editing = true,
        KeyCode::Char('s') => ask(m, Confirm::Stop),
        KeyCode::Char('r') => ask(m, Confirm::Remove),
        KeyCode::Char('p') => return act(m, Action::Suspend, "suspending"),
        KeyCode::Char('c') => return act(m, Action::Resume, "resuming"),
        _ => {}
    }
    Step::Go
}

/// Right: unfolds a parent, else shows the job's details.
fn unfold(m: &mut Model) {
    if m.set_fold(true).is_none() {
        m.pane = Pane::Details;
    }
}

/// Left: folds a parent, else goes back to the output, else to the parent.
fn fold(m: &mut Model) {
    if m.set_fold(false).is_some() {
        return;
    }
    if m.pane == Pane::Details {
        m.pane = Pane::Output;
    } else {
        m.select_parent();
    }
}

fn job_of(a: Action) -> JobId {
    match a {
        Action::Stop(id) | Action::Remove(id) | Action::Suspend(id) | Action::Resume(id) => id,
    }
}

/// Runs an action on the selected job at once (it can be undone).
fn act(m: &mut Model, a: fn(JobId) -> Action, what: &str) -> Step {
    match m.selected() {
        Some(id) => {
            m.note = format!("{what} job {id}...");
            Step::Act(a(id))
        }
        None => {
            m.note = "no job selected".into();
            Step::Go
        }
    }
}

/// Asks to confirm an action on the selected job.
fn ask(m: &mut Model, q: fn(JobId) -> Confirm) {
    match m.selected() {
        Some(id) => m.confirm = Some(q(id)),
        None => m.note = "no job selected".into(),
    }
}

/// Asks the daemon for what the model lacks: rows it never saw, rows on
/// screen that changed, counts of batches on screen.
fn fetch(c: &mut Client, m: &mut Model) -> Result<()> {
    // A second round for what the first one brought on screen.
    for _ in 0..2 {
        m.refresh();
        let f = m.to_fetch();
        if f.is_empty() {
            break;
        }
        let mut ids = f.unknown;
        ids.extend(f.rows);
        if !ids.is_empty() {
            let (rows, gone) = rows_of(c, ids)?;
            for id in gone {
                m.forget(id);
            }
            m.rows(rows);
        }
        for &id in &f.counts {
            match c.call(Op::Progress { id }) {
                Ok(Response::Progress(counts)) => m.counts(id, counts),
                Ok(_) => {}
                Err(e) if no_such_job(&e) => m.forget(id),
                Err(e) => return Err(e),
            }
        }
        m.counted(&f.counts);
    }
    m.refresh();
    Ok(())
}

fn no_such_job(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Exit>()
        .is_some_and(|x| x.code == exit::USAGE)
}

/// The rows of `ids`, and those of them that are gone.
fn rows_of(c: &mut Client, ids: Vec<JobId>) -> Result<(Vec<jobs_core::JobInfo>, Vec<JobId>)> {
    let list = |c: &mut Client, ids: Vec<JobId>| {
        c.call(Op::List(ListRequest {
            ids,
            include_children: true,
            ..ListRequest::default()
        }))
    };
    match list(c, ids.clone()) {
        Ok(Response::Jobs(rows)) => Ok((rows, Vec::new())),
        Ok(other) => Err(anyhow!("unexpected reply to list: {other:?}")),
        // One of them is gone: ask for each.
        Err(e) if no_such_job(&e) => {
            let (mut rows, mut gone) = (Vec::new(), Vec::new());
            for id in ids {
                match list(c, vec![id]) {
                    Ok(Response::Jobs(r)) => rows.extend(r),
                    Ok(_) => {}
                    Err(e) if no_such_job(&e) => gone.push(id),
                    Err(e) => return Err(e),
                }
            }
            Ok((rows, gone))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::tests::job;

    fn press(m: &mut Model, c: KeyCode) -> Step {
        key(KeyEvent::new(c, KeyModifiers::NONE), m)
    }

    #[test]
    fn destructive_keys_ask_first() {
        let mut m = Model::new(vec![job(1, "a", "x"), job(2, "b", "y")], None);
        m.set_height(10);
        m.refresh();
        press(&mut m, KeyCode::Down);
        assert!(matches!(press(&mut m, KeyCode::Char('s')), Step::Go));
        assert_eq!(m.confirm, Some(Confirm::Stop(2)));
        assert!(matches!(press(&mut m, KeyCode::Char('n')), Step::Go));
        assert_eq!((m.confirm, m.note.as_str()), (None, "cancelled"));
        press(&mut m, KeyCode::Char('r'));
        assert!(matches!(
            press(&mut m, KeyCode::Char('y')),
            Step::Act(Action::Remove(2))
        ));
        press(&mut m, KeyCode::Char('s'));
        assert!(matches!(
            press(&mut m, KeyCode::Char('y')),
            Step::Act(Action::Stop(2))
        ));
        assert!(matches!(press(&mut m, KeyCode::Char('q')), Step::Quit));
    }

    #[test]
    fn slash_types_a_filter_and_esc_clears_it() {
        let mut m = Model::new(vec![job(1, "build", "make"), job(2, "test", "x")], None);
        m.set_height(10);
        press(&mut m, KeyCode::Char('/'));
        for c in "tes".chars() {
            press(&mut m, KeyCode::Char(c));
        }
        // `q` is text while the filter is typed.
        assert!(matches!(press(&mut m, KeyCode::Char('q')), Step::Go));
        press(&mut m, KeyCode::Backspace);
        press(&mut m, KeyCode::Enter);
        m.refresh();
        assert_eq!((m.filter.as_str(), m.editing), ("tes", false));
        assert_eq!(m.window().iter().map(|l| l.id).collect::<Vec<_>>(), [2]);
        press(&mut m, KeyCode::Esc);
        m.refresh();
        assert_eq!(m.line_count(), 2);
        assert!(matches!(press(&mut m, KeyCode::Esc), Step::Quit));
    }
}
