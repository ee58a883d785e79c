//! Human and JSON renderings of job rows.
//!
//! The table is laid out as PowerShell's `Get-Job` does: a header line, a
//! line of dashes under each header, then one line per job, columns padded
//! with spaces and no borders, so `awk` splits it. `--json` output is the
//! stable interface; the table is for people.
//!
//! Text that came from users or jobs (names, commands, locations, reasons,
//! type names) is shown with [`visible`]: a character a terminal would act
//! on rather than print (C0 and C1 controls, DEL, bidirectional overrides)
//! is written as its Rust escape, `\u{1b}` for ESC, so a job cannot move
//! the cursor, retitle the window or hide text. JSON stays exact.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::SystemTime;

use jobs_core::JobInfo;
use serde_json::Value;

/// The table's headers, in order.
pub(crate) const HEADERS: [&str; 7] = [
    "Id",
    "Name",
    "PSJobTypeName",
    "State",
    "HasMoreData",
    "Location",
    "Command",
];

/// Whether a terminal would act on `c` rather than show it: newline and
/// tab are layout and left to the callers.
fn acts_on_terminal(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every character a terminal would act on written as its escape
/// (`\u{1b}`); newlines and tabs are kept.
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts_on_terminal) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if acts_on_terminal(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`visible`] on one line: runs of newlines and tabs become one space.
fn one_line(s: &str) -> String {
    s.split(['\n', '\t'])
        .filter(|p| !p.is_empty())
        .map(visible)
        .collect::<Vec<_>>()
        .join(" ")
}

fn bool_word(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A job's row as the table's cells, in [`HEADERS`] order, each on one
/// line with what a terminal would act on escaped.
pub(crate) fn cells(info: &JobInfo) -> [String; 7] {
    [
        info.id.to_string(),
        one_line(&info.name),
        one_line(&info.type_name),
        info.state.as_str().to_string(),
        bool_word(info.has_more_data).to_string(),
        one_line(&info.location),
        one_line(&info.command),
    ]
}

/// Writes the job table; nothing at all for no jobs.
pub(crate) fn table(out: &mut impl Write, jobs: &[JobInfo]) -> io::Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let rows: Vec<[String; 7]> = jobs.iter().map(cells).collect();
    let mut widths: [usize; 7] = HEADERS.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [String; 7]| -> String {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                let pad = widths[i] - c.chars().count() + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.trim_end().to_string()
    };
    let mut buf = String::new();
    buf.push_str(&line(HEADERS.map(str::to_string)));
    buf.push('\n');
    buf.push_str(&line(HEADERS.map(|h| "-".repeat(h.len()))));
    buf.push('\n');
    for r in rows {
        buf.push_str(&line(r));
        buf.push('\n');
    }
    out.write_all(buf.as_bytes())
}

/// Writes rows as a JSON array.
pub(crate) fn json_list(out: &mut impl Write, jobs: &[JobInfo]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, jobs)?;
    out.write_all(b"\n")
}

fn time(t: Option<SystemTime>) -> String {
    t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default()
}

/// The jobs a job waits for as `3 (build), 4 (test), 5 (lint, any
/// outcome)`: each id with its name from `rows` (an id whose job is gone
/// shows alone), `after_any` ones marked.
fn waits_for(job: &JobInfo, rows: &[JobInfo]) -> String {
    let name = |id: u64| rows.iter().find(|r| r.id == id).map(|r| visible(&r.name));
    let all = job.after.iter().map(|id| (*id, false));
    let any = job.after_any.iter().map(|id| (*id, true));
    all.chain(any)
        .map(|(id, any)| match (name(id), any) {
            (Some(n), false) => format!("{id} ({n})"),
            (Some(n), true) => format!("{id} ({n}, any outcome)"),
            (None, false) => id.to_string(),
            (None, true) => format!("{id} (any outcome)"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes every property of one job, then its children's rows.
/// `dependencies` holds the rows of the jobs it waits for.
pub(crate) fn show(
    out: &mut impl Write,
    job: &JobInfo,
    children: &[JobInfo],
    dependencies: &[JobInfo],
) -> io::Result<()> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let mut props: Vec<(&str, String)> = vec![
        ("Id", job.id.to_string()),
        ("InstanceId", job.instance_id.to_string()),
        ("Name", visible(&job.name).into_owned()),
        ("PSJobTypeName", visible(&job.type_name).into_owned()),
        ("State", job.state.as_str().to_string()),
        (
            "Reason",
            opt(job.reason.as_deref().map(|r| visible(r).into_owned())),
        ),
        ("HasMoreData", bool_word(job.has_more_data).to_string()),
        ("Location", visible(&job.location).into_owned()),
        ("Command", visible(&job.command).into_owned()),
        ("ExitCode", opt(job.exit_code.map(|c| c.to_string()))),
        ("Begin", time(job.begin)),
        ("End", time(job.end)),
        ("Parent", opt(job.parent.map(|p| p.to_string()))),
        (
            "Children",
            job.children
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Detached", bool_word(job.detached).to_string()),
    ];
    if let Some(item) = &job.item {
        props.push(("Item", visible(item).into_owned()));
    }
    if job.attempts > 1 {
        props.push(("Attempts", job.attempts.to_string()));
    }
    if job.has_dependencies() {
        props.push(("Waits for", waits_for(job, dependencies)));
    }
    let width = props.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut buf = String::new();
    for (k, v) in props {
        let v = v.replace('\n', &format!("\n{}", " ".repeat(width + 3)));
        buf.push_str(format!("{k:width$} : {v}").trim_end());
        buf.push('\n');
    }
    out.write_all(buf.as_bytes())?;
    if !children.is_empty() {
        out.write_all(b"\n")?;
        table(out, children)?;
    }
    Ok(())
}

/// Writes one job as JSON with its children's rows under `child_jobs`.
pub(crate) fn show_json(
    out: &mut impl Write,
    job: &JobInfo,
    children: &[JobInfo],
) -> io::Result<()> {
    let mut v = serde_json::to_value(job)?;
    if let Value::Object(m) = &mut v {
        m.insert("child_jobs".into(), serde_json::to_value(children)?);
    }
    serde_json::to_writer_pretty(&mut *out, &v)?;
    out.write_all(b"\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jobs_core::JobState;

    /// A running process job's row.
    pub(crate) fn job(id: u64, name: &str, command: &str) -> JobInfo {
        JobInfo {
            id,
            instance_id: Default::default(),
            name: name.into(),
            type_name: "BackgroundJob".into(),
            state: JobState::Running,
            reason: None,
            has_more_data: true,
            location: "localhost".into(),
            command: command.into(),
            begin: None,
            end: None,
            exit_code: None,
            parent: None,
            children: vec![],
            detached: false,
            item: None,
            attempts: 0,
            after: Vec::new(),
            after_any: Vec::new(),
            restarted_from: None,
        }
    }

    #[test]
    fn table_is_aligned_with_dashes() {
        let mut out = Vec::new();
        table(
            &mut out,
            &[
                job(1, "Job1", "sleep 10"),
                job(12, "build-all", "make\n-j4"),
            ],
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Id  Name       PSJobTypeName  State    HasMoreData  Location   Command"
        );
        assert_eq!(
            lines[1],
            "--  ----       -------------  -----    -----------  --------   -------"
        );
        assert_eq!(
            lines[3],
            "12  build-all  BackgroundJob  Running  True         localhost  make -j4"
        );
        let fields: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            fields[..6],
            ["1", "Job1", "BackgroundJob", "Running", "True", "localhost"]
        );
    }

    #[test]
    fn controls_are_escaped_and_text_is_kept() {
        assert!(matches!(visible("plain\ttext\n"), Cow::Borrowed(_)));
        assert_eq!(
            visible("a\u{1b}[2J\rb\u{7f}\u{85}\u{202e}c\\n"),
            "a\\u{1b}[2J\\u{d}b\\u{7f}\\u{85}\\u{202e}c\\n"
        );
        assert_eq!(one_line("x\n\n\ty\u{7}"), "x y\\u{7}");
    }

    #[test]
    fn no_jobs_prints_nothing() {
        let mut out = Vec::new();
        table(&mut out, &[]).expect("write");
        assert!(out.is_empty());
    }

    #[test]
    fn show_names_the_jobs_a_job_waits_for() {
        let mut d = job(7, "deploy", "true");
        d.after = vec![3, 4, 9];
        d.after_any = vec![5];
        let rows = [
            job(3, "build", "make"),
            job(4, "test", "make test"),
            job(5, "lint", "x"),
        ];
        let mut out = Vec::new();
        show(&mut out, &d, &[], &rows).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let line = text
            .lines()
            .find(|l| l.starts_with("Waits for"))
            .expect("a Waits for line");
        assert_eq!(
            line.split_once(" : ").map(|(k, v)| (k.trim_end(), v)),
            Some(("Waits for", "3 (build), 4 (test), 9, 5 (lint, any outcome)"))
        );
        let mut out = Vec::new();
        show(&mut out, &job(8, "x", "true"), &[], &[]).expect("write");
        assert!(!String::from_utf8_lossy(&out).contains("Waits for"));
    }

    #[test]
    fn show_json_has_children_rows() {
        let mut out = Vec::new();
        show_json(&mut out, &job(1, "a", "b"), &[job(2, "c", "d")]).expect("write");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["child_jobs"][0]["id"], 2);
        assert_eq!(v["type"], "BackgroundJob");
    }
}
