//! Draws the live view: the job table (the columns `list` prints, a
//! progress bar where a job has one, children folded under their parent),
//! the selected job's output or details, a status line and a help line.
//!
//! A table wider than the screen gives up columns in the order they matter
//! least (Location, PSJobTypeName, HasMoreData), then shortens names; the
//! command takes what is left and is cut at the edge. Colours only mark
//! states and are left out under `NO_COLOR`; the selection is shown in
//! reverse video either way.

use jobs_core::JobState;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::model::{Bar, Confirm, Model, Pane};
use crate::render::{self, cells, visible, HEADERS};

/// The help line.
pub(crate) const HELP: &str = "Enter show  s stop  r remove  p suspend  c resume  / filter  q quit";

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Areas {
    /// The job table, its two header lines included.
    pub(crate) table: Rect,
    /// The selected job's output or details.
    pub(crate) pane: Rect,
    /// Counts per state, the daemon's pid, a note or a question.
    pub(crate) status: Rect,
    /// The keys.
    pub(crate) help: Rect,
}

/// Splits the screen.
pub(crate) fn areas(area: Rect) -> Areas {
    let pane = if area.height >= 12 {
        area.height / 3
    } else {
        0
    };
    let [table, pane, status, help] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(pane),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        table,
        pane,
        status,
        help,
    }
}

/// How many jobs the table shows at once on a screen of `area`.
pub(crate) fn table_rows(area: Rect) -> usize {
    usize::from(areas(area).table.height.saturating_sub(2))
}

/// The colours in use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Theme {
    /// Whether states are coloured (not under `NO_COLOR`).
    pub(crate) color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set to something.
    pub(crate) fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn state(self, s: JobState) -> Style {
        if !self.color {
            return Style::default();
        }
        let c = match s {
            JobState::Running => Color::Green,
            JobState::Failed | JobState::Disconnected => Color::Red,
            JobState::Stopped | JobState::Stopping => Color::Yellow,
            JobState::Blocked | JobState::Suspending | JobState::Suspended => Color::Magenta,
            JobState::NotStarted => Color::Cyan,
            _ => return Style::default(),
        };
        Style::default().fg(c)
    }
}

/// Draws the whole screen.
pub(crate) fn draw(f: &mut Frame, m: &Model, theme: Theme) {
    let a = areas(f.area());
    f.render_widget(Paragraph::new(table(m, a.table.width, theme)), a.table);
    if a.pane.height > 0 {
        pane(f, m, a.pane);
    }
    f.render_widget(Paragraph::new(status(m, theme)), a.status);
    f.render_widget(
        Paragraph::new(HELP).style(Style::default().add_modifier(Modifier::DIM)),
        a.help,
    );
}

/// The table's columns: the list's, and Progress after State when a job
/// on screen has a bar.
const PROGRESS: &str = "Progress";
const BAR: usize = 10;

fn bar_text(b: Bar) -> String {
    let filled = |frac: f64| ((frac * BAR as f64).round() as usize).min(BAR);
    match b {
        Bar::Percent(pc) => {
            let n = filled(pc / 100.0);
            format!("[{}{}] {:>3.0}%", "#".repeat(n), ".".repeat(BAR - n), pc)
        }
        Bar::Count { done, total } => {
            let n = if total == 0 {
                BAR
            } else {
                filled(done as f64 / total as f64)
            };
            format!("[{}{}] {done}/{total}", "#".repeat(n), ".".repeat(BAR - n))
        }
        Bar::Activity => format!("[{}]", " ".repeat(BAR)),
    }
}

/// Cuts `s` to `w` characters, marking a cut with `~`.
fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
    if w > 0 {
        out.push('~');
    }
    out
}

/// The table's lines: headers, dashes, then the jobs on screen.
fn table(m: &Model, width: u16, theme: Theme) -> Vec<Line<'static>> {
    let width = usize::from(width);
    // Cells per line on screen, the Id with its fold mark, the Progress
    // cell inserted after State.
    let window = m.window();
    let mut rows: Vec<(Vec<String>, Option<JobState>, bool)> = Vec::with_capacity(window.len());
    let mut any_bar = false;
    for l in window {
        let mark = match (l.depth, m.fold(l.id)) {
            (0, Some(true)) => "- ",
            (0, Some(false)) => "+ ",
            (0, None) => "  ",
            _ => "    ",
        };
        let (mut c, state) = match m.row(l.id) {
            Some(row) => (cells(row).to_vec(), Some(row.state)),
            None => {
                let mut c = vec![String::new(); HEADERS.len()];
                c[0] = l.id.to_string();
                c[1] = "...".into();
                (c, None)
            }
        };
        c[0] = format!("{mark}{}", c[0]);
        let bar = m.bar(l.id).map(bar_text);
        any_bar |= bar.is_some();
        c.insert(4, bar.unwrap_or_default());
        rows.push((c, state, m.selected() == Some(l.id)));
    }
    let mut headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    headers[0] = format!("  {}", headers[0]);
    headers.insert(4, PROGRESS.into());
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for (c, _, _) in &rows {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Which columns show: Id 0, Name 1, Type 2, State 3, Progress 4,
    // HasMoreData 5, Location 6, Command 7.
    let mut keep = [true; 8];
    keep[4] = any_bar;
    let used = |keep: &[bool; 8], widths: &[usize]| -> usize {
        let shown: Vec<usize> = (0..7).filter(|&i| keep[i]).map(|i| widths[i]).collect();
        shown.iter().sum::<usize>() + 2 * shown.len()
    };
    // Room for at least this much of the command.
    const COMMAND_MIN: usize = 12;
    for drop in [6, 2, 5] {
        if used(&keep, &widths) + COMMAND_MIN <= width {
            break;
        }
        keep[drop] = false;
    }
    let over = (used(&keep, &widths) + COMMAND_MIN).saturating_sub(width);
    if over > 0 {
        widths[1] = widths[1].saturating_sub(over).max(8);
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::with_capacity(width);
        for (i, c) in cells.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            if i == 7 {
                s.push_str(c);
            } else {
                let c = cut(c, widths[i]);
                let pad = widths[i] - c.chars().count() + 2;
                s.push_str(&c);
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s
    };
    let mut dashes: Vec<String> = HEADERS.iter().map(|h| "-".repeat(h.len())).collect();
    dashes[0] = format!("  {}", dashes[0]);
    dashes.insert(4, "-".repeat(PROGRESS.len()));
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut out = vec![Line::styled(line(&headers), bold), Line::raw(line(&dashes))];
    for (c, state, selected) in rows {
        let mut text = line(&c);
        let n = text.chars().count();
        if n < width {
            text.extend(std::iter::repeat_n(' ', width - n));
        }
        let mut style = state.map(|s| theme.state(s)).unwrap_or_default();
        if selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        out.push(Line::styled(text, style));
    }
    if m.line_count() == 0 {
        let text = if m.filter.is_empty() {
            "(no jobs)".to_string()
        } else {
            format!("(no job's name or command holds {:?})", m.filter)
        };
        out.push(Line::styled(
            text,
            Style::default().add_modifier(Modifier::DIM),
        ));
    }
    out
}

/// The bottom pane: the selected job's output tail, or its details.
fn pane(f: &mut Frame, m: &Model, area: Rect) {
    let selected = m.selected().and_then(|id| m.row(id));
    let title = match (selected, m.pane) {
        (Some(r), Pane::Output) => format!(" {} ({}): output ", r.id, visible(&r.name)),
        (Some(r), Pane::Details) => format!(" {} ({}): details ", r.id, visible(&r.name)),
        (None, _) => " no job selected ".to_string(),
    };
    let block = Block::default().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = usize::from(inner.height);
    let lines: Vec<Line> = match (selected, m.pane) {
        (None, _) => Vec::new(),
        (Some(r), Pane::Details) => {
            let mut buf = Vec::new();
            let _ = render::show(&mut buf, r, &[], &[]);
            String::from_utf8_lossy(&buf)
                .lines()
                .take(h)
                .map(|l| Line::raw(l.to_string()))
                .collect()
        }
        (Some(_), Pane::Output) => match m.tail() {
            Some([]) => vec![Line::styled(
                "(no output)",
                Style::default().add_modifier(Modifier::DIM),
            )],
            Some(tail) => tail[tail.len().saturating_sub(h)..]
                .iter()
                .map(|l| Line::raw(l.clone()))
                .collect(),
            None => Vec::new(),
        },
    };
    f.render_widget(Paragraph::new(lines), inner);
}

/// The status line: a question, the filter being typed, or the counts per
/// state, the job count, the daemon's pid and the last note.
fn status(m: &Model, theme: Theme) -> Line<'static> {
    let ask = |what: &str, id| {
        let name = m.row(id).map(|r| visible(&r.name).into_owned());
        let name = name.map(|n| format!(" ({n})")).unwrap_or_default();
        Line::styled(
            format!("{what} job {id}{name}? y to confirm, any other key to cancel"),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    };
    match m.confirm {
        Some(Confirm::Stop(id)) => return ask("Stop", id),
        Some(Confirm::Remove(id)) => return ask("Remove", id),
        None => {}
    }
    if m.editing {
        return Line::raw(format!(
            "/{}_  (name or command; Enter keeps it, Esc clears it)",
            visible(&m.filter)
        ));
    }
    let mut spans = Vec::new();
    for (i, (state, n)) in m.state_counts().into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(", "));
        }
        spans.push(Span::styled(
            format!("{n} {}", state.as_str()),
            theme.state(state),
        ));
    }
    let mut rest = format!(" | {} jobs", m.job_count());
    if !m.filter.is_empty() {
        rest.push_str(&format!(
            " ({} shown, filter {:?})",
            m.line_count(),
            m.filter
        ));
    }
    match m.pid {
        Some(pid) => rest.push_str(&format!(" | daemon pid {pid}")),
        None => rest.push_str(" | daemon pid ?"),
    }
    if !m.note.is_empty() {
        rest.push_str(" | ");
        rest.push_str(&m.note);
    }
    spans.push(Span::raw(rest));
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::model::tests::job;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn buffer(m: &mut Model, w: u16, h: u16) -> ratatui::buffer::Buffer {
        let backend = TestBackend::new(w, h);
        let mut t = Terminal::new(backend).expect("a test terminal");
        m.set_height(table_rows(Rect::new(0, 0, w, h)));
        m.refresh();
        t.draw(|f| draw(f, m, Theme { color: false }))
            .expect("draws");
        t.backend().buffer().clone()
    }

    fn screen(m: &mut Model, w: u16, h: u16) -> Vec<String> {
        let buf = buffer(m, w, h);
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    /// The lines shown in reverse video (the selection).
    fn reversed(m: &mut Model, w: u16, h: u16) -> Vec<u16> {
        let buf = buffer(m, w, h);
        (0..h)
            .filter(|&y| buf[(w - 1, y)].modifier.contains(Modifier::REVERSED))
            .collect()
    }

    fn wide_jobs() -> Vec<jobs_core::JobInfo> {
        (1..=40)
            .map(|i| {
                let mut j = job(
                    i,
                    &format!("a-rather-long-job-name-number-{i}"),
                    &format!(
                        "/usr/bin/some-program --with many --arguments {i} {}",
                        "x".repeat(100)
                    ),
                );
                j.location = "a-long-host-name.example.org".into();
                j
            })
            .collect()
    }

    #[test]
    fn a_wide_table_fits_80_by_24() {
        let mut m = Model::new(wide_jobs(), Some(4242));
        m.refresh();
        m.move_by(3);
        let s = screen(&mut m, 80, 24);
        let head: Vec<&str> = s[0].split_whitespace().collect();
        // Location and the type went first; the command still shows.
        assert_eq!(
            head,
            ["Id", "Name", "State", "HasMoreData", "Command"],
            "{s:#?}"
        );
        assert!(s[1].trim_start().starts_with("--  ----"), "{s:#?}");
        let row: Vec<&str> = s[2].split_whitespace().collect();
        assert_eq!(
            row[..3],
            ["1", "a-rather-long-job-name-number-1", "Running"]
        );
        assert!(
            row[4..].join(" ").starts_with("/usr/bin/some-prog"),
            "{s:#?}"
        );
        // 24 lines: 2 of headers, 12 jobs, the pane (8), status, help.
        let a = areas(Rect::new(0, 0, 80, 24));
        assert_eq!(table_rows(Rect::new(0, 0, 80, 24)), 12);
        assert_eq!((a.pane.height, a.status.y, a.help.y), (8, 22, 23));
        assert!(s[13].trim_start().starts_with("12 "), "{s:#?}");
        assert!(
            s[14].contains("4 (a-rather-long-job-name-number-4): output"),
            "{s:#?}"
        );
        assert!(
            s[22].starts_with("40 Running | 40 jobs | daemon pid 4242"),
            "{s:#?}"
        );
        assert_eq!(s[23], HELP);
        // The selection spans the screen's width, on job 4's line.
        assert_eq!(reversed(&mut m, 80, 24), [5]);
        // Scrolling down past the screen keeps the selection on it.
        m.move_by(20);
        let s = screen(&mut m, 80, 24);
        assert_eq!(reversed(&mut m, 80, 24), [13]);
        assert!(s[13].trim_start().starts_with("24 "), "{s:#?}");
    }

    #[test]
    fn a_wider_screen_shows_every_column_and_a_narrow_one_shortens_names() {
        let mut m = Model::new(wide_jobs(), None);
        let s = screen(&mut m, 200, 30);
        let head: Vec<&str> = s[0].split_whitespace().collect();
        assert_eq!(head, HEADERS);
        let mut m = Model::new(wide_jobs(), None);
        let s = screen(&mut m, 40, 24);
        let head: Vec<&str> = s[0].split_whitespace().collect();
        assert_eq!(head, ["Id", "Name", "State", "Command"], "{s:#?}");
        assert!(s[2].contains("~"), "{s:#?}");
    }

    #[test]
    fn bars_show_percent_and_batch_counts() {
        assert_eq!(bar_text(Bar::Percent(42.0)), "[####......]  42%");
        assert_eq!(
            bar_text(Bar::Count { done: 3, total: 10 }),
            "[###.......] 3/10"
        );
        let mut m = Model::new(wide_jobs(), None);
        m.counts(
            2,
            jobs_protocol::ChildCounts {
                total: 4,
                done: 1,
                ..Default::default()
            },
        );
        let s = screen(&mut m, 120, 24);
        let head: Vec<&str> = s[0].split_whitespace().collect();
        assert_eq!(head[3..5], ["State", "Progress"], "{s:#?}");
        assert!(s[3].contains("Running  [###.......] 1/4  True"), "{s:#?}");
    }
}
