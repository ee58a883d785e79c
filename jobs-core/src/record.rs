//! Records: what a job produces, tagged with the stream it belongs to.

use std::any::Any;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::JobId;

/// The seven record streams of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The job's results (a process's stdout).
    Output,
    /// Non-terminating errors (a process's stderr).
    Error,
    /// Warnings.
    Warning,
    /// Verbose messages.
    Verbose,
    /// Debug messages.
    Debug,
    /// Informational messages.
    Information,
    /// Progress reports.
    Progress,
}

impl Stream {
    /// Every stream.
    pub const ALL: [Stream; 7] = [
        Stream::Output,
        Stream::Error,
        Stream::Warning,
        Stream::Verbose,
        Stream::Debug,
        Stream::Information,
        Stream::Progress,
    ];

    /// The stream's lowercase name, as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Output => "output",
            Stream::Error => "error",
            Stream::Warning => "warning",
            Stream::Verbose => "verbose",
            Stream::Debug => "debug",
            Stream::Information => "information",
            Stream::Progress => "progress",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stream '{0}'")]
pub struct ParseStreamError(pub String);

impl FromStr for Stream {
    type Err = ParseStreamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s_l = s.to_ascii_lowercase();
        match s_l.as_str() {
            "info" => Ok(Stream::Information),
            "warn" => Ok(Stream::Warning),
            _ => Stream::ALL
                .into_iter()
                .find(|st| st.as_str() == s_l)
                .ok_or_else(|| ParseStreamError(s.to_string())),
        }
    }
}

/// A progress report: how far an activity has come.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ProgressRecord {
    /// Percent complete (0..=100), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// What is being done.
    #[serde(default)]
    pub activity: String,
    /// Where it stands.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
}

/// A structured error: a message and optional details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorRecord {
    /// What went wrong.
    pub message: String,
    /// A category, if the producer has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Anything else the producer wants to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// A renderer that turns a live value into JSON for consumers that need text.
pub type RenderFn = fn(&(dyn Any + Send + Sync)) -> serde_json::Value;

/// A live value: an object of this process, handed back by reference.
///
/// Only in-process executors produce these. Receiving one gives back a clone
/// of the very `Arc` that was emitted (`Arc::ptr_eq` holds), never a copy of
/// the value. A live value crosses a process boundary only as its rendering.
#[derive(Clone)]
pub struct Live {
    value: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
    render: Option<RenderFn>,
}

impl Live {
    /// Wraps an `Arc` without a renderer; it renders as its type name.
    pub fn new<T: Any + Send + Sync>(value: Arc<T>) -> Self {
        Live {
            value,
            type_name: std::any::type_name::<T>(),
            render: None,
        }
    }

    /// Wraps an `Arc` with a function that renders it as JSON.
    pub fn with_render<T: Any + Send + Sync>(value: Arc<T>, render: RenderFn) -> Self {
        Live {
            value,
            type_name: std::any::type_name::<T>(),
            render: Some(render),
        }
    }

    /// The shared value itself.
    pub fn value(&self) -> &Arc<dyn Any + Send + Sync> {
        &self.value
    }

    /// The value as an `Arc<T>`, if it is a `T`: the same allocation.
    pub fn downcast<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.value).downcast::<T>().ok()
    }

    /// The Rust type name of the value.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The value as JSON: its renderer's result, or `{"type": NAME}`.
    pub fn render(&self) -> serde_json::Value {
        match self.render {
            Some(f) => f(self.value.as_ref()),
            None => serde_json::json!({ "type": self.type_name }),
        }
    }
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Live<{}>", self.type_name)
    }
}

/// What a record carries.
#[derive(Clone, Debug)]
pub enum Payload {
    /// Text.
    Text(String),
    /// Raw bytes, kept byte-exact (a process's output).
    Bytes(Vec<u8>),
    /// A structured value.
    Value(serde_json::Value),
    /// A progress report.
    Progress(ProgressRecord),
    /// A structured error.
    Error(ErrorRecord),
    /// A live in-process value, handed back by reference.
    Live(Live),
}

/// What kind of payload a record carries, as every wire and store names
/// it: the daemon's protocol, the plugin boundary and the durable store all
/// speak this one vocabulary, with [`Payload::encode`] and
/// [`Payload::decode`] as the one encoding (bytes and text raw, the others
/// as JSON; a live value as its rendering, a value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// Raw bytes (a process's output).
    Bytes,
    /// UTF-8 text.
    Text,
    /// JSON of a structured value (or a live value's rendering).
    Value,
    /// JSON of a [`ProgressRecord`].
    Progress,
    /// JSON of an [`ErrorRecord`].
    Error,
}

impl PayloadKind {
    /// Every kind, in the order of their codes.
    pub const ALL: [PayloadKind; 5] = [
        PayloadKind::Bytes,
        PayloadKind::Text,
        PayloadKind::Value,
        PayloadKind::Progress,
        PayloadKind::Error,
    ];

    /// The lowercase name (`bytes`, `text`, ...), as JSON and the store
    /// write it.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Bytes => "bytes",
            PayloadKind::Text => "text",
            PayloadKind::Value => "value",
            PayloadKind::Progress => "progress",
            PayloadKind::Error => "error",
        }
    }

    /// The kind of a name written by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<PayloadKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The one-byte code binary frames carry (its index in [`ALL`](Self::ALL)).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind of a code written by [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<PayloadKind> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

/// A payload whose bytes do not decode as their kind says.
#[derive(Debug, thiserror::Error)]
#[error("a {kind} payload that does not decode: {why}", kind = .kind.as_str())]
pub struct PayloadError {
    kind: PayloadKind,
    why: String,
    bytes: Vec<u8>,
}

impl PayloadError {
    /// The bytes that did not decode, for a reader that shows them anyway.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Payload {
    /// The payload's kind (a live value is a [`PayloadKind::Value`]).
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Bytes(_) => PayloadKind::Bytes,
            Payload::Text(_) => PayloadKind::Text,
            Payload::Value(_) | Payload::Live(_) => PayloadKind::Value,
            Payload::Progress(_) => PayloadKind::Progress,
            Payload::Error(_) => PayloadKind::Error,
        }
    }

    /// The payload as its kind and bytes: bytes and text raw (no copy),
    /// the others as JSON, a live value as the JSON of its rendering.
    pub fn encode(self) -> (PayloadKind, Vec<u8>) {
        let kind = self.kind();
        // Plain data always serializes; `null` stands in if it ever did not.
        let json = |v: Result<Vec<u8>, serde_json::Error>| v.unwrap_or_else(|_| b"null".to_vec());
        let bytes = match self {
            Payload::Bytes(b) => b,
            Payload::Text(t) => t.into_bytes(),
            Payload::Value(v) => json(serde_json::to_vec(&v)),
            Payload::Live(l) => json(serde_json::to_vec(&l.render())),
            Payload::Progress(p) => json(serde_json::to_vec(&p)),
            Payload::Error(e) => json(serde_json::to_vec(&e)),
        };
        (kind, bytes)
    }

    /// The payload [`encode`](Self::encode) gave `bytes` for.
    pub fn decode(kind: PayloadKind, bytes: Vec<u8>) -> Result<Payload, PayloadError> {
        let parsed = match kind {
            PayloadKind::Bytes => return Ok(Payload::Bytes(bytes)),
            PayloadKind::Text => {
                return String::from_utf8(bytes).map(Payload::Text).map_err(|e| {
                    let why = e.to_string();
                    PayloadError {
                        kind,
                        why,
                        bytes: e.into_bytes(),
                    }
                })
            }
            PayloadKind::Value => serde_json::from_slice(&bytes).map(Payload::Value),
            PayloadKind::Progress => serde_json::from_slice(&bytes).map(Payload::Progress),
            PayloadKind::Error => serde_json::from_slice(&bytes).map(Payload::Error),
        };
        parsed.map_err(|e| PayloadError {
            kind,
            why: e.to_string(),
            bytes,
        })
    }

    /// The payload as JSON (bytes become a string if UTF-8, else an array).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Payload::Text(t) => serde_json::Value::String(t.clone()),
            Payload::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => serde_json::Value::String(s.to_string()),
                Err(_) => serde_json::Value::Array(b.iter().map(|&x| x.into()).collect()),
            },
            Payload::Value(v) => v.clone(),
            Payload::Progress(p) => serde_json::to_value(p).unwrap_or_default(),
            Payload::Error(e) => serde_json::to_value(e).unwrap_or_default(),
            Payload::Live(l) => l.render(),
        }
    }

    /// The payload as the bytes a terminal would show: text and bytes as they
    /// are, a string value without quotes, anything else as compact JSON.
    pub fn to_display_bytes(&self) -> Vec<u8> {
        match self {
            Payload::Text(t) => t.as_bytes().to_vec(),
            Payload::Bytes(b) => b.clone(),
            Payload::Error(e) => e.message.as_bytes().to_vec(),
            Payload::Progress(p) => match p.percent {
                Some(pc) => format!("{} {pc}% {}", p.activity, p.status)
                    .trim_end()
                    .as_bytes()
                    .to_vec(),
                None => format!("{} {}", p.activity, p.status)
                    .trim_end()
                    .as_bytes()
                    .to_vec(),
            },
            other => match other.to_json() {
                serde_json::Value::String(s) => s.into_bytes(),
                v => v.to_string().into_bytes(),
            },
        }
    }
}

/// One record: a stream tag and a payload.
#[derive(Clone, Debug)]
pub struct Record {
    /// The stream the record belongs to.
    pub stream: Stream,
    /// What it carries.
    pub payload: Payload,
}

impl Record {
    /// A record of any stream.
    pub fn new(stream: Stream, payload: Payload) -> Self {
        Record { stream, payload }
    }

    /// An output record of text.
    pub fn output_text(text: impl Into<String>) -> Self {
        Record::new(Stream::Output, Payload::Text(text.into()))
    }

    /// A text record of the given stream.
    pub fn text(stream: Stream, text: impl Into<String>) -> Self {
        Record::new(stream, Payload::Text(text.into()))
    }

    /// A record of raw bytes.
    pub fn bytes(stream: Stream, bytes: Vec<u8>) -> Self {
        Record::new(stream, Payload::Bytes(bytes))
    }

    /// A progress record.
    pub fn progress(percent: Option<f64>, activity: impl Into<String>) -> Self {
        Record::new(
            Stream::Progress,
            Payload::Progress(ProgressRecord {
                percent,
                activity: activity.into(),
                status: String::new(),
            }),
        )
    }

    /// An output record holding a live value.
    pub fn live<T: Any + Send + Sync>(value: Arc<T>) -> Self {
        Record::new(Stream::Output, Payload::Live(Live::new(value)))
    }

    /// Approximate size in bytes, for accounting.
    pub fn approx_size(&self) -> usize {
        match &self.payload {
            Payload::Text(t) => t.len(),
            Payload::Bytes(b) => b.len(),
            _ => 64,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "lowercase")]
enum PayloadRepr {
    Text(String),
    Bytes(Vec<u8>),
    Value(serde_json::Value),
    Progress(ProgressRecord),
    Error(ErrorRecord),
}

#[derive(Serialize, Deserialize)]
struct RecordRepr {
    stream: Stream,
    #[serde(flatten)]
    payload: PayloadRepr,
}

/// Records serialize as `{"stream": S, "kind": K, "data": D}`. A live value
/// serializes as its rendering (kind `value`): it cannot leave the process.
impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let payload = match &self.payload {
            Payload::Text(t) => PayloadRepr::Text(t.clone()),
            Payload::Bytes(b) => PayloadRepr::Bytes(b.clone()),
            Payload::Value(v) => PayloadRepr::Value(v.clone()),
            Payload::Progress(p) => PayloadRepr::Progress(p.clone()),
            Payload::Error(e) => PayloadRepr::Error(e.clone()),
            Payload::Live(l) => PayloadRepr::Value(l.render()),
        };
        RecordRepr {
            stream: self.stream,
            payload,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RecordRepr::deserialize(d)?;
        let payload = match r.payload {
            PayloadRepr::Text(t) => Payload::Text(t),
            PayloadRepr::Bytes(b) => Payload::Bytes(b),
            PayloadRepr::Value(v) => Payload::Value(v),
            PayloadRepr::Progress(p) => Payload::Progress(p),
            PayloadRepr::Error(e) => Payload::Error(e),
        };
        Ok(Record {
            stream: r.stream,
            payload,
        })
    }
}

/// A record as handed out by `receive`: the job it came from (a child's id
/// when received through its parent), its sequence number, and the record.
#[derive(Clone, Debug)]
pub struct Received {
    /// The job that produced the record.
    pub job: JobId,
    /// Session-wide sequence number: records compare in production order.
    pub seq: u64,
    /// The record.
    pub record: Record,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_serde_round_trip() {
        let recs = vec![
            Record::text(Stream::Warning, "w"),
            Record::bytes(Stream::Output, vec![0, 255, 10]),
            Record::progress(Some(50.0), "copy"),
            Record::new(Stream::Output, Payload::Value(serde_json::json!({"a": 1}))),
            Record::new(
                Stream::Error,
                Payload::Error(ErrorRecord {
                    message: "boom".into(),
                    ..Default::default()
                }),
            ),
        ];
        let json = serde_json::to_string(&recs).expect("serialize");
        let back: Vec<Record> = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.len(), recs.len());
        assert_eq!(back[1].payload.to_display_bytes(), vec![0, 255, 10]);
        assert_eq!(back[0].stream, Stream::Warning);
    }

    #[test]
    fn live_serializes_as_rendering_and_downcasts_to_same_arc() {
        let v = Arc::new(41u32);
        let live = Live::with_render(Arc::clone(&v), |a| {
            serde_json::json!(a.downcast_ref::<u32>().copied().unwrap_or(0) + 1)
        });
        let back = live.downcast::<u32>().expect("u32");
        assert!(Arc::ptr_eq(&v, &back));
        let rec = Record::new(Stream::Output, Payload::Live(live));
        assert_eq!(
            serde_json::to_value(&rec).expect("ser"),
            serde_json::json!({"stream": "output", "kind": "value", "data": 42})
        );
    }
}
