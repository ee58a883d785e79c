//! Running one script: the engine, its stream functions, stop between
//! operations, limits, and how failures become reasons.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jobs_core::{JobFailure, Payload, ProgressRecord, Record, StopToken, Stream};
use rhai::packages::{Package, StandardPackage};
use rhai::{
    Dynamic, Engine, EvalAltResult, ImmutableString, Module, ParseError, ParseErrorType, Position,
    Shared,
};

use crate::limits::resident_bytes;
use crate::value::to_text;
use crate::{Limit, Limits};

/// Where a running script's records go: a thread job's context, or a
/// worker process's records channel.
pub trait Sink: Send + Sync + 'static {
    /// An output value (`emit(x)`, or the script's last value).
    fn output(&self, value: Dynamic);
    /// Any other record: error, warning, verbose, debug, information, progress.
    fn record(&self, record: Record);
}

/// What kind of failure ended a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptErrorKind {
    /// The script threw (`throw "msg"`); the reason is the thrown value.
    Thrown,
    /// The script does not parse.
    Syntax,
    /// An error while running (unknown variable, type mismatch, ...).
    Runtime,
    /// The script ran into one of its [`Limits`].
    Limit(Limit),
    /// A stop was requested.
    Stopped,
}

/// Why a script failed: its kind and the reason shown for the job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ScriptError {
    kind: ScriptErrorKind,
    reason: String,
}

impl ScriptError {
    fn new(kind: ScriptErrorKind, reason: impl Into<String>) -> Self {
        ScriptError {
            kind,
            reason: reason.into(),
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ScriptErrorKind {
        self.kind
    }

    /// The reason, one line: the thrown message, the engine's message with
    /// `(line L, column C)`, or the limit that was exceeded.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<ScriptError> for JobFailure {
    fn from(e: ScriptError) -> Self {
        JobFailure::new(e.reason)
    }
}

/// The standard functions, built once and shared by every engine.
fn standard_module() -> Shared<Module> {
    static STD: OnceLock<Shared<Module>> = OnceLock::new();
    STD.get_or_init(|| StandardPackage::new().as_shared_module())
        .clone()
}

/// The error value that ends a script on a stop request.
fn terminated() -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::UNIT,
        Position::NONE,
    ))
}

fn text_record(sink: &Arc<dyn Sink>, stream: Stream, value: &Dynamic) {
    sink.record(Record::new(stream, Payload::Text(to_text(value))));
}

fn progress_record(sink: &Arc<dyn Sink>, percent: f64, activity: &str) {
    sink.record(Record::new(
        Stream::Progress,
        Payload::Progress(ProgressRecord {
            percent: Some(percent),
            activity: activity.to_string(),
            status: String::new(),
        }),
    ));
}

fn sleep(stop: &StopToken, seconds: f64) -> Result<(), Box<EvalAltResult>> {
    let d = Duration::try_from_secs_f64(seconds.max(0.0)).map_err(|_| -> Box<EvalAltResult> {
        format!("sleep: {seconds} is not a number of seconds").into()
    })?;
    // Time spent suspended does not count: the sleep pauses with the job.
    if stop.sleep_running(d) {
        Err(terminated())
    } else {
        Ok(())
    }
}

/// A sandboxed engine (standard functions, no file or module access) with
/// the stream functions bound to `sink`, stops seen through `stop`, and
/// `limits` applied.
pub fn engine(limits: &Limits, sink: Arc<dyn Sink>, stop: StopToken) -> Engine {
    let mut e = Engine::new_raw();
    e.register_global_module(standard_module());
    limits.apply(&mut e);

    // A stop ends the script with unit; the memory bound with its value,
    // which the failure then names.
    let s = stop.clone();
    let max_memory = limits.or(&Limits::defaults()).max_memory.filter(|&m| m > 0);
    e.on_progress(move |ops| {
        // A suspended job pauses here, between two operations.
        s.pause_point();
        if s.is_stopped() {
            return Some(Dynamic::UNIT);
        }
        let max = max_memory?;
        if ops % MEMORY_CHECK_EVERY == 0 && resident_bytes().is_some_and(|r| r > max) {
            return Some(Dynamic::from(max as rhai::INT));
        }
        None
    });

    let k = Arc::clone(&sink);
    e.register_fn(
        "emit",
        move |x: Dynamic| -> Result<(), Box<EvalAltResult>> {
            if nested_deeper_than(&x, MAX_OUTPUT_DEPTH) {
                return Err(format!("emit: the value is {}", too_deep()).into());
            }
            k.output(x);
            Ok(())
        },
    );
    for (name, stream) in [
        ("error", Stream::Error),
        ("warn", Stream::Warning),
        ("verbose", Stream::Verbose),
        ("info", Stream::Information),
    ] {
        let k = Arc::clone(&sink);
        e.register_fn(name, move |x: Dynamic| text_record(&k, stream, &x));
    }
    // `print` and `debug` are the engine's own: their text goes to the
    // callbacks below. `debug` is overridden so that it renders as the other
    // stream functions do (a string plain, a structure as JSON).
    e.register_fn("debug", |x: Dynamic| to_text(&x));
    e.register_fn("debug", |x: ImmutableString| x);
    e.register_fn("debug", |x: rhai::Array| to_text(&Dynamic::from_array(x)));
    e.register_fn("debug", |x: rhai::Map| to_text(&Dynamic::from_map(x)));
    let k = Arc::clone(&sink);
    e.on_debug(move |text, _, _| {
        k.record(Record::text(Stream::Debug, text));
    });
    let k = Arc::clone(&sink);
    e.on_print(move |text| {
        k.record(Record::text(Stream::Information, text));
    });

    let k = Arc::clone(&sink);
    e.register_fn("progress", move |p: rhai::INT, a: &str| {
        progress_record(&k, p as f64, a)
    });
    let k = Arc::clone(&sink);
    e.register_fn("progress", move |p: rhai::FLOAT, a: &str| {
        progress_record(&k, p, a)
    });

    let s = stop.clone();
    e.register_fn("sleep", move |secs: rhai::INT| sleep(&s, secs as f64));
    let s = stop;
    e.register_fn("sleep", move |secs: rhai::FLOAT| sleep(&s, secs));
    e
}

/// How many operations pass between two looks at the process's memory
/// (a look reads `/proc/self/statm`: a few microseconds).
const MEMORY_CHECK_EVERY: u64 = 1 << 16;

/// The stack of the thread a script runs on. The engine walks nested
/// values recursively (to check their sizes, to clone and drop them), and
/// the size limits allow arrays nested a million deep: a thread's usual
/// 2 MiB overflow within seconds of `loop { a = [a] }`, which aborts the
/// whole process. Only the pages a script uses are committed.
pub const SCRIPT_STACK_SIZE: usize = 512 << 20;

/// The deepest nesting of arrays and maps in an output value. Output
/// values outlive the script and are rendered and dropped on other threads,
/// with ordinary stacks.
pub const MAX_OUTPUT_DEPTH: usize = 100;

/// Runs `script` to its end, on a thread of its own with a
/// [`SCRIPT_STACK_SIZE`] stack: its records go to `sink`, and its last
/// value, unless it is unit, is output. A stop request ends it between
/// operations (or in `sleep`) with [`ScriptErrorKind::Stopped`]. An output
/// value nested deeper than [`MAX_OUTPUT_DEPTH`] fails the script.
pub fn run_script(
    script: &str,
    limits: &Limits,
    sink: Arc<dyn Sink>,
    stop: &StopToken,
) -> Result<(), ScriptError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("script".into())
            .stack_size(SCRIPT_STACK_SIZE)
            .spawn_scoped(scope, || run_here(script, limits, sink, stop))
            .map_err(|e| {
                ScriptError::new(
                    ScriptErrorKind::Runtime,
                    format!("cannot start the script's thread: {e}"),
                )
            })?;
        thread.join().unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ScriptError::new(
                ScriptErrorKind::Runtime,
                format!("the script engine panicked: {what}"),
            ))
        })
    })
}

/// [`run_script`] on the calling thread.
fn run_here(
    script: &str,
    limits: &Limits,
    sink: Arc<dyn Sink>,
    stop: &StopToken,
) -> Result<(), ScriptError> {
    let engine = engine(limits, Arc::clone(&sink), stop.clone());
    let ast = engine
        .compile(script)
        .map_err(|e| syntax_error(e, &engine))?;
    let value = engine
        .eval_ast::<Dynamic>(&ast)
        .map_err(|e| eval_error(*e, &engine))?;
    if !value.is_unit() {
        if nested_deeper_than(&value, MAX_OUTPUT_DEPTH) {
            return Err(ScriptError::new(
                ScriptErrorKind::Runtime,
                format!("the script's last value is {}", too_deep()),
            ));
        }
        sink.output(value);
    }
    Ok(())
}

fn too_deep() -> String {
    format!("nested deeper than {MAX_OUTPUT_DEPTH} levels: it cannot be output")
}

/// Whether arrays and maps nest deeper than `max` levels in `v` (recursing
/// `max + 1` levels at most).
fn nested_deeper_than(v: &Dynamic, max: usize) -> bool {
    if let Some(a) = v.read_lock::<rhai::Array>() {
        return max == 0 || a.iter().any(|x| nested_deeper_than(x, max - 1));
    }
    if let Some(m) = v.read_lock::<rhai::Map>() {
        return max == 0 || m.values().any(|x| nested_deeper_than(x, max - 1));
    }
    false
}

fn at(pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
        (Some(l), None) => format!(" (line {l})"),
        _ => String::new(),
    }
}

/// The failure of a script that ran into `limit` at `pos`, naming the
/// limit and its value in `engine`.
fn limit_error(limit: Limit, engine: &Engine, pos: Position) -> ScriptError {
    ScriptError::new(
        ScriptErrorKind::Limit(limit),
        format!(
            "script exceeded the {} ({} = {}){}",
            limit.what(),
            limit.name(),
            limit.value_in(engine),
            at(pos)
        ),
    )
}

fn syntax_error(e: ParseError, engine: &Engine) -> ScriptError {
    let ParseError(kind, pos) = e;
    if let ParseErrorType::ExprTooDeep = *kind {
        return limit_error(Limit::ExprDepth, engine, pos);
    }
    ScriptError::new(
        ScriptErrorKind::Syntax,
        format!("syntax error: {kind}{}", at(pos)),
    )
}

fn eval_error(mut e: EvalAltResult, engine: &Engine) -> ScriptError {
    // The cause sits inside any function-call wrappers; its position is
    // where it happened, the outermost one where the script called in.
    let outer = e.position();
    let mut inner = &e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, cause, _) = inner {
        inner = cause;
    }
    let pos = if inner.position().is_none() {
        outer
    } else {
        inner.position()
    };
    let limit = match inner {
        EvalAltResult::ErrorTooManyOperations(_) => Some(Limit::Operations),
        EvalAltResult::ErrorStackOverflow(_) => Some(Limit::CallDepth),
        EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("string") => {
            Some(Limit::StringSize)
        }
        EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("map") => Some(Limit::MapSize),
        EvalAltResult::ErrorDataTooLarge(..) => Some(Limit::ArraySize),
        _ => None,
    };
    if let Some(limit) = limit {
        return limit_error(limit, engine, pos);
    }
    match inner {
        EvalAltResult::ErrorRuntime(v, _) => {
            let msg = to_text(v);
            let msg = if msg.is_empty() {
                "the script threw an exception".to_string()
            } else {
                msg
            };
            ScriptError::new(ScriptErrorKind::Thrown, msg)
        }
        EvalAltResult::ErrorTerminated(v, _) if v.is_int() => ScriptError::new(
            ScriptErrorKind::Limit(Limit::Memory),
            format!(
                "script exceeded the {} ({} = {}): the process it runs in holds more{}",
                Limit::Memory.what(),
                Limit::Memory.name(),
                v.as_int().unwrap_or_default(),
                at(pos)
            ),
        ),
        EvalAltResult::ErrorTerminated(..) => {
            ScriptError::new(ScriptErrorKind::Stopped, "stopped on request")
        }
        _ => {
            let pos = e.take_position();
            ScriptError::new(ScriptErrorKind::Runtime, format!("{e}{}", at(pos)))
        }
    }
}
