//! What crosses the boundary as bytes: the spec and status as JSON, and
//! records as length-prefixed frames.
//!
//! A frame is `stream: u8, kind: u8, len: u32 (little endian), data` (the
//! ABI's frame format, see [`abi`](super::abi)): the
//! kind is the [`PayloadKind`](crate::PayloadKind) code and the data
//! [`Payload::encode`](crate::Payload::encode)'s, so
//! text and bytes travel raw (byte-exact, no JSON escaping) and the others
//! as JSON, as on every other wire.

use serde::{Deserialize, Serialize};

use crate::{JobSpec, JobState, Record, Stream};
#[cfg(any(feature = "plugin-host", test))]
use crate::{Payload, PayloadKind};

#[cfg(any(feature = "plugin-host", test))]
use super::abi::FRAME_HEAD_LEN;

/// The serializable part of a [`JobSpec`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireSpec {
    pub(crate) type_name: String,
    pub(crate) name: Option<String>,
    pub(crate) command: String,
    pub(crate) params: serde_json::Value,
    pub(crate) location: Option<String>,
    pub(crate) detached: bool,
    #[serde(default)]
    pub(crate) instance_id: Option<uuid::Uuid>,
}

impl WireSpec {
    #[cfg(any(feature = "plugin-host", test))]
    pub(crate) fn from_spec(spec: &JobSpec) -> Self {
        WireSpec {
            type_name: spec.type_name.clone(),
            name: spec.name.clone(),
            command: spec.command.clone(),
            params: spec.params.clone(),
            location: spec.location.clone(),
            detached: spec.detached,
            instance_id: spec.instance_id,
        }
    }

    pub(crate) fn into_spec(self) -> JobSpec {
        let mut spec = JobSpec::new(self.type_name, self.command)
            .params(self.params)
            .detached(self.detached);
        spec.name = self.name;
        spec.location = self.location;
        spec.instance_id = self.instance_id;
        spec
    }
}

/// A plugin's description of its executor.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireDescribe {
    pub(crate) type_name: String,
    pub(crate) default_throttle: Option<usize>,
    #[serde(default)]
    pub(crate) reports_start: bool,
    #[serde(default)]
    pub(crate) can_suspend: bool,
}

/// A job's state as the plugin sees it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireStatus {
    pub(crate) state: JobState,
    pub(crate) reason: Option<String>,
    pub(crate) exit_code: Option<i32>,
    #[serde(default)]
    pub(crate) location: String,
}

fn stream_index(s: Stream) -> u8 {
    Stream::ALL.iter().position(|&x| x == s).unwrap_or(0) as u8
}

/// Appends one record's frame to `out`.
pub(crate) fn encode(record: &Record, out: &mut Vec<u8>) -> Result<(), String> {
    let (kind, data) = record.payload.clone().encode();
    let len = u32::try_from(data.len()).map_err(|_| "a record larger than 4 GiB".to_string())?;
    out.push(stream_index(record.stream));
    out.push(kind.code());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&data);
    Ok(())
}

#[cfg(any(feature = "plugin-host", test))]
/// Decodes a batch of frames. Plugin bytes are checked, never trusted.
#[cfg(any(feature = "plugin-host", test))]
pub(crate) fn decode(mut buf: &[u8]) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let Some((head, rest)) = buf.split_at_checked(FRAME_HEAD_LEN) else {
            return Err("a truncated record frame".into());
        };
        let stream = *Stream::ALL
            .get(usize::from(head[0]))
            .ok_or_else(|| format!("unknown stream number {}", head[0]))?;
        let kind = PayloadKind::from_code(head[1])
            .ok_or_else(|| format!("unknown record kind {}", head[1]))?;
        let len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let Some((data, rest)) = rest.split_at_checked(len) else {
            return Err("a truncated record frame".into());
        };
        let payload = Payload::decode(kind, data.to_vec()).map_err(|e| e.to_string())?;
        out.push(Record::new(stream, payload));
        buf = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProgressRecord;

    #[test]
    fn frames_round_trip_every_payload_kind() {
        let recs = vec![
            Record::text(Stream::Warning, "w\nx"),
            Record::bytes(Stream::Output, vec![0, 255, 10]),
            Record::bytes(Stream::Error, Vec::new()),
            Record::new(
                Stream::Progress,
                Payload::Progress(ProgressRecord {
                    percent: Some(5.0),
                    activity: "copy".into(),
                    status: String::new(),
                }),
            ),
            Record::new(
                Stream::Output,
                Payload::Value(serde_json::json!({"a": [1]})),
            ),
        ];
        let mut buf = Vec::new();
        for r in &recs {
            encode(r, &mut buf).expect("encode");
        }
        let back = decode(&buf).expect("decode");
        assert_eq!(back.len(), recs.len());
        for (a, b) in recs.iter().zip(&back) {
            assert_eq!(a.stream, b.stream);
            assert_eq!(a.payload.to_json(), b.payload.to_json());
        }
        assert!(matches!(back[1].payload, Payload::Bytes(ref b) if b == &[0, 255, 10]));
    }

    #[test]
    fn malformed_frames_are_errors() {
        let mut buf = Vec::new();
        encode(&Record::output_text("hello"), &mut buf).expect("encode");
        assert!(decode(&buf[..buf.len() - 1]).is_err());
        assert!(decode(&buf[..3]).is_err());
        let mut bad_stream = buf.clone();
        bad_stream[0] = 7;
        assert!(decode(&bad_stream).is_err());
        let mut bad_kind = buf.clone();
        bad_kind[1] = 9;
        assert!(decode(&bad_kind).is_err());
        let mut bad_utf8 = buf;
        bad_utf8[6] = 0xff;
        assert!(decode(&bad_utf8).is_err());
    }
}
