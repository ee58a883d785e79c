//! `start --each`: one child's work from the batch's template and an item.
//!
//! Replacement strings are GNU parallel's: `{}` the item, `{#}` its
//! 1-based index, `{.}` the item without its extension, `{/}` its basename,
//! `{//}` its dirname (`.` if it has none), `{/.}` its basename without
//! extension. Anything else in braces stays as written. In an argv each
//! argument is replaced in place, byte for byte, and stays one argument; in
//! a shell line each substituted value is shell-quoted. With no replacement
//! string anywhere the item is appended as the last argument (quoted in a
//! shell line). A script gets `item` and `index` as variables, set before
//! its first line on that same line, so its line numbers do not move.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use std::sync::{Arc, OnceLock};

use jobs_core::{shell_quote_bytes, BatchSpec, Halt, JobFailure, JobId, JobSpec};
use jobs_protocol::{Each, ErrorCode, StartRequest, Work};

use crate::executors;
use crate::fail::Fail;
use crate::shared::Daemon;
use crate::spread::Spread;

/// Starts the batch of `req`: `env` is the encoded environment, `input`
/// the items as read. Every child's spec is built (and bad input refused)
/// before anything starts.
pub(crate) fn start(
    d: &Daemon,
    req: StartRequest,
    each: Each,
    (env, input): (&[u8], &[u8]),
    restarted_from: Option<JobId>,
) -> Result<JobId, Fail> {
    if req.detached {
        return Err(Fail::new(
            ErrorCode::Usage,
            "--each does not go with --detached: a batch's children live with the session",
        ));
    }
    if req.throttle == Some(0) {
        return Err(Fail::new(ErrorCode::Usage, "--throttle must be at least 1"));
    }
    let halt = match &each.halt {
        Some(h) => Some(
            h.parse::<Halt>()
                .map_err(|e| Fail::new(ErrorCode::Usage, e))?,
        ),
        None => None,
    };
    let template = Template::new(req, (env, input), &each, None)?;
    let spread = template.spread;
    // Every child's spec is built once here, so bad input is refused
    // before anything starts; then each is built again as its child is
    // made, so that the batch never holds all of them at once. A queued
    // child keeps only a light spec that builds its full one again when
    // it launches.
    for index in 0..template.items.len() {
        light_spec(&template, &each, index)?;
    }
    let children = (0..template.items.len()).map(|index| {
        light_spec(&template, &each, index).unwrap_or_else(|f| failing_spec(&template, f))
    });
    let req = &template.req;
    Ok(d.session.start_batch_with(
        BatchSpec {
            name: req.name.clone(),
            command: executors::command_line(&req.work),
            throttle: req
                .throttle
                .or_else(|| spread.map(|s| s.throttle(req.hosts.len()))),
            children: Vec::new(),
            halt,
            after: req.after.clone(),
            after_any: req.after_any.clone(),
            restarted_from,
            instance_id: spread.map(|s| s.group),
        },
        children,
    )?)
}

/// The spec of a child whose spec could not be built a second time (it
/// was once, from the same template, so this does not happen): the child
/// fails with the reason when it launches rather than the batch being
/// left half made.
fn failing_spec(template: &Template, f: Fail) -> JobSpec {
    let req = &template.req;
    let type_name = match req.hosts.is_empty() {
        true => executors::type_name_of(req.type_name.as_deref().unwrap_or("process")),
        false => "RemoteJob".into(),
    };
    let mut spec = JobSpec::new(type_name, executors::command_line(&req.work));
    spec.make = Some(Arc::new(move |_: &JobSpec| {
        Err(JobFailure::new(f.message.clone()))
    }));
    spec
}

/// The light specs of the children for items `indices` (from 0) of the
/// batch `req` started (`restart --failed`), built as `start` built them.
pub(crate) fn rerun_specs(
    req: StartRequest,
    each: &Each,
    (env, input): (&[u8], &[u8]),
    group: uuid::Uuid,
    indices: &[usize],
) -> Result<Vec<JobSpec>, Fail> {
    let template = Template::new(req, (env, input), each, Some(group))?;
    indices
        .iter()
        .map(|&index| {
            if index >= template.items.len() {
                return Err(Fail::new(
                    ErrorCode::Failed,
                    format!("the batch's stored input has no item {}", index + 1),
                ));
            }
            light_spec(&template, each, index)
        })
        .collect()
}

/// The spec a queued child keeps: what `list` shows, its options, and how
/// to build its full spec (checked here, built again when it launches).
fn light_spec(template: &Arc<Template>, each: &Each, index: usize) -> Result<JobSpec, Fail> {
    // Checked without the environment: it only fills the spec, it never
    // makes one fail, and reading it for every item of a large batch is
    // most of the time its start takes.
    let full = template.child_with(index, false)?;
    let mut light = JobSpec::new(full.type_name.clone(), full.command.clone());
    light.location = full
        .location
        .clone()
        .or_else(|| (!template.req.hosts.is_empty()).then(|| template.req.hosts.join(",")));
    light.item = Some(String::from_utf8_lossy(template.item(index)).into_owned());
    light.retries = each.retries.max(template.req.retries);
    light.retry_delay = template.req.retry_delay;
    light.timeout = template.req.timeout;
    light.timeout_shown = template.req.timeout_shown.clone();
    let t = Arc::clone(template);
    light.make = Some(Arc::new(move |_: &JobSpec| {
        t.child(index).map_err(|f| JobFailure::new(f.message))
    }));
    Ok(light)
}

/// What every child of a batch is made from: the request, the caller's
/// environment and the input, shared by the children's specs.
struct Template {
    /// Set when the items are spread over the hosts.
    spread: Option<Spread>,
    req: StartRequest,
    env: Vec<u8>,
    /// The children's variables, made from `env` and the request's once,
    /// when the first child starts, and shared by all.
    vars: OnceLock<jobs_process::Env>,
    input: Vec<u8>,
    /// Where each item is in `input`.
    items: Vec<(usize, usize)>,
}

impl Template {
    /// The template of the batch `req` started; `group`, if given, is the
    /// group its items spread over hosts share (a rerun's: its batch's).
    fn new(
        req: StartRequest,
        (env, input): (&[u8], &[u8]),
        each: &Each,
        group: Option<uuid::Uuid>,
    ) -> Result<Arc<Template>, Fail> {
        let mut spread = Spread::of(&req, each)?;
        if let (Some(s), Some(g)) = (spread.as_mut(), group) {
            s.group = g;
        }
        Ok(Arc::new(Template {
            spread,
            req,
            env: env.to_vec(),
            vars: OnceLock::new(),
            input: input.to_vec(),
            items: item_spans(input, each.null),
        }))
    }

    fn item(&self, index: usize) -> &[u8] {
        let (start, end) = self.items[index];
        &self.input[start..end]
    }

    /// The full spec of the child for item `index` (from 0).
    fn child(&self, index: usize) -> Result<JobSpec, Fail> {
        self.child_with(index, true)
    }

    /// The spec of the child for item `index`: with the caller's
    /// environment if `full`, else with only the request's own variables
    /// (enough to check that the spec can be made).
    fn child_with(&self, index: usize, full: bool) -> Result<JobSpec, Fail> {
        let req = &self.req;
        let child = StartRequest {
            work: expand(&req.work, self.item(index), index + 1),
            type_name: req.type_name.clone(),
            name: None,
            hosts: req.hosts.clone(),
            throttle: None,
            cwd: req.cwd.clone(),
            env: req.env.clone(),
            detached: false,
            each: None,
            input_len: None,
            after: Vec::new(),
            after_any: Vec::new(),
            timeout: req.timeout,
            timeout_shown: req.timeout_shown.clone(),
            retries: 0,
            retry_delay: None,
            // The batch's hook runs once, when the parent finishes.
            on_finish: None,
        };
        match (&self.spread, full) {
            (Some(spread), true) => spread.child(&child, &self.env),
            (Some(spread), false) => spread.child(&child, b""),
            (None, true) => {
                let vars = self
                    .vars
                    .get_or_init(|| executors::environment(&self.env, &req.env).into());
                executors::job_spec_with(child, vars.clone(), None)
            }
            (None, false) => {
                let vars = executors::environment(b"", &req.env).into();
                executors::job_spec_with(child, vars, None)
            }
        }
    }
}

/// The work of the child for `item`, the `index`-th (from 1) of its batch.
pub(crate) fn expand(work: &Work, item: &[u8], index: usize) -> Work {
    match work {
        Work::Program { argv } => {
            let mut argv: Vec<OsString> = argv.clone();
            if argv.iter().any(|a| has_replacement(a.as_bytes())) {
                for a in &mut argv {
                    let replaced = replace(a.as_bytes(), item, index, |v| v.to_vec());
                    *a = OsString::from_vec(replaced);
                }
            } else {
                argv.push(OsString::from_vec(item.to_vec()));
            }
            Work::Program { argv }
        }
        Work::Shell { line } => {
            let line = line.as_bytes();
            let out = if has_replacement(line) {
                replace(line, item, index, shell_quote_bytes)
            } else {
                let mut out = line.to_vec();
                out.push(b' ');
                out.extend(shell_quote_bytes(item));
                out
            };
            Work::Shell {
                line: OsString::from_vec(out),
            }
        }
        Work::Script { text, file } => Work::Script {
            text: format!(
                "let item = {}; let index = {index}; {text}",
                script_string(&String::from_utf8_lossy(item))
            ),
            file: file.clone(),
        },
    }
}

/// The replacement strings, longest first where one is a prefix of another.
const REPLACEMENTS: [&[u8]; 6] = [b"{}", b"{#}", b"{.}", b"{//}", b"{/.}", b"{/}"];

fn has_replacement(s: &[u8]) -> bool {
    (0..s.len()).any(|i| REPLACEMENTS.iter().any(|r| s[i..].starts_with(r)))
}

/// `s` with every replacement string replaced by `quote` of its value.
fn replace(s: &[u8], item: &[u8], index: usize, quote: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + item.len());
    let mut i = 0;
    while i < s.len() {
        let Some(r) = REPLACEMENTS.iter().find(|r| s[i..].starts_with(r)) else {
            out.push(s[i]);
            i += 1;
            continue;
        };
        let value: Vec<u8> = match *r {
            b"{}" => item.to_vec(),
            b"{#}" => index.to_string().into_bytes(),
            b"{.}" => without_extension(item).to_vec(),
            b"{/}" => basename(item).to_vec(),
            b"{//}" => dirname(item).to_vec(),
            _ => without_extension(basename(item)).to_vec(),
        };
        out.extend(quote(&value));
        i += r.len();
    }
    out
}

fn basename(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

fn dirname(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(i) => &p[..i],
        None => b".",
    }
}

/// `p` without the extension of its last component; a leading dot (a
/// hidden file's) is not an extension.
fn without_extension(p: &[u8]) -> &[u8] {
    let base_start = p.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    match p[base_start..].iter().rposition(|&b| b == b'.') {
        Some(0) | None => p,
        Some(i) => &p[..base_start + i],
    }
}

/// A script-language string literal of `s`.
fn script_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where the items of an `--each` input are: lines (a last line without
/// its newline counts), or with `null` NUL-separated items. An empty input
/// has none.
pub(crate) fn item_spans(input: &[u8], null: bool) -> Vec<(usize, usize)> {
    let sep = if null { 0 } else { b'\n' };
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, &b) in input.iter().enumerate() {
        if b == sep {
            spans.push((start, i));
            start = i + 1;
        }
    }
    if start < input.len() {
        spans.push((start, input.len()));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&[u8]]) -> Work {
        Work::Program {
            argv: a.iter().map(|s| OsString::from_vec(s.to_vec())).collect(),
        }
    }

    fn argv_of(w: Work) -> Vec<Vec<u8>> {
        match w {
            Work::Program { argv } => argv.into_iter().map(OsStringExt::into_vec).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn line_of(w: Work) -> Vec<u8> {
        match w {
            Work::Shell { line } => line.into_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_replacement_string() {
        let w = argv(&[b"x", b"{}|{#}|{.}|{/}|{//}|{/.}|{x}"]);
        assert_eq!(
            argv_of(expand(&w, b"dir/sub/a.tar.gz", 7))[1],
            b"dir/sub/a.tar.gz|7|dir/sub/a.tar|a.tar.gz|dir/sub|a.tar|{x}"
        );
        assert_eq!(
            argv_of(expand(&w, b"plain", 1))[1],
            b"plain|1|plain|plain|.|plain|{x}"
        );
        assert_eq!(
            argv_of(expand(&w, b"/top", 1))[1],
            b"/top|1|/top|top|/|top|{x}"
        );
        assert_eq!(
            argv_of(expand(&w, b"d.x/.rc", 1))[1],
            b"d.x/.rc|1|d.x/.rc|.rc|d.x|.rc|{x}"
        );
    }

    #[test]
    fn an_argv_item_is_one_argument_byte_for_byte() {
        let item: &[u8] = b"-a b 'c' $(rm -rf /) \xff";
        assert_eq!(
            argv_of(expand(&argv(&[b"echo", b"{}"]), item, 1)),
            [b"echo".to_vec(), item.to_vec()]
        );
        assert_eq!(
            argv_of(expand(&argv(&[b"echo"]), item, 1)),
            [b"echo".to_vec(), item.to_vec()]
        );
    }

    #[test]
    fn a_shell_line_quotes_what_it_substitutes() {
        let w = Work::Shell {
            line: OsString::from("echo {} {#}"),
        };
        assert_eq!(
            line_of(expand(&w, b"it's $(x)", 3)),
            b"echo 'it'\\''s $(x)' 3"
        );
        let w = Work::Shell {
            line: OsString::from("echo"),
        };
        assert_eq!(line_of(expand(&w, b"a b", 1)), b"echo 'a b'");
    }

    #[test]
    fn a_script_gets_item_and_index_on_its_first_line() {
        let w = Work::Script {
            text: "emit(item)".into(),
            file: None,
        };
        match expand(&w, b"q\"\\\n", 2) {
            Work::Script { text, .. } => {
                assert_eq!(
                    text,
                    "let item = \"q\\\"\\\\\\n\"; let index = 2; emit(item)"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn items_are_lines_or_nul_separated() {
        let items = |input: &[u8], null| -> Vec<Vec<u8>> {
            item_spans(input, null)
                .into_iter()
                .map(|(a, b)| input[a..b].to_vec())
                .collect()
        };
        assert_eq!(items(b"a\nb\n", false), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(items(b"a\nb", false), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(items(b"a\n\nb\n", false).len(), 3);
        assert!(items(b"", false).is_empty());
        assert_eq!(
            items(b"a b\0c\nd\0", true),
            [b"a b".to_vec(), b"c\nd".to_vec()]
        );
    }
}
