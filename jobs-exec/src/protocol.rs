//! The line protocol between the daemon and an executable executor: one
//! JSON object per line, `"msg"` naming its kind. Version
//! [`PROTOCOL_VERSION`]; `plugins/README.md` ("Executables as executors")
//! is its written form.

use serde::{Deserialize, Serialize};

/// The version of the line protocol this host speaks. The executable's
/// `hello` must name the same one.
pub const PROTOCOL_VERSION: u32 = 1;

/// A line the executable writes to its stdout.
#[derive(Debug, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub(crate) enum FromExecutor {
    /// The first line: who it is and which protocol it speaks.
    Hello {
        /// The protocol version it speaks.
        protocol: u32,
        /// Its name, for the log.
        #[serde(default)]
        name: Option<String>,
        /// Its version, for the log.
        #[serde(default)]
        version: Option<String>,
    },
    /// A record of a job.
    Record {
        /// The job's instance id.
        job: String,
        /// The stream (`output` when absent).
        #[serde(default)]
        stream: Option<String>,
        /// UTF-8 text.
        #[serde(default)]
        text: Option<String>,
        /// Raw bytes, base64 (standard alphabet, padded or not).
        #[serde(default)]
        bytes: Option<String>,
        /// A structured value.
        #[serde(default)]
        value: Option<serde_json::Value>,
    },
    /// A progress report of a job.
    Progress {
        /// The job's instance id.
        job: String,
        /// Percent complete.
        #[serde(default)]
        percent: Option<f64>,
        /// What is being done.
        #[serde(default)]
        activity: String,
        /// Where it stands.
        #[serde(default)]
        status: String,
    },
    /// A change of a job's state: blocked (waiting for input) or not, or a
    /// new location.
    State {
        /// The job's instance id.
        job: String,
        /// Blocked or not.
        #[serde(default)]
        blocked: Option<bool>,
        /// Where the job now runs.
        #[serde(default)]
        location: Option<String>,
    },
    /// The job's end.
    Exit {
        /// The job's instance id.
        job: String,
        /// Its exit code, if it had one.
        #[serde(default)]
        code: Option<i32>,
        /// Why it failed, if it did.
        #[serde(default)]
        reason: Option<String>,
    },
    /// A kind this host does not know (from a later version): ignored.
    #[serde(other)]
    Unknown,
}

/// A line the host writes to the executable's stdin.
#[derive(Debug, Serialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub(crate) enum ToExecutor<'a> {
    /// Start a job.
    Start {
        /// The job's instance id, the key of every later line about it.
        job: String,
        /// The job type (the executable's name).
        #[serde(rename = "type")]
        type_name: &'a str,
        /// The job's name, if it has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        /// The command as the user reads it.
        command: &'a str,
        /// What to run: `{"program": {"argv": [..]}}`, `{"shell": {"line": ..}}`
        /// or `{"script": {"text": .., "file": ..}}`.
        work: serde_json::Value,
        /// The directory to run in, if the caller gave one.
        #[serde(skip_serializing_if = "Option::is_none")]
        cwd: Option<&'a serde_json::Value>,
        /// The whole environment, `[[name, value], ..]`, if the caller gave one.
        #[serde(skip_serializing_if = "Option::is_none")]
        env: Option<&'a serde_json::Value>,
    },
    /// Stop a job.
    Stop {
        /// The job's instance id.
        job: String,
    },
}

/// Decodes standard base64 (`A-Z a-z 0-9 + /`, `=` padding optional);
/// `None` if `text` is not base64.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = text.trim_end_matches('=').as_bytes();
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_decodes_padded_and_unpadded_and_refuses_garbage() {
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("aGVsbG8K").as_deref(), Some(&b"hello\n"[..]));
        assert_eq!(base64_decode("/w==").as_deref(), Some(&[0xffu8][..]));
        assert_eq!(
            base64_decode("AAECA/7/").as_deref(),
            Some(&[0u8, 1, 2, 3, 0xfe, 0xff][..])
        );
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("a!==").is_none());
        assert!(base64_decode("aGk===").is_none());
    }

    #[test]
    fn unknown_kinds_parse_as_unknown() {
        let m: super::FromExecutor =
            serde_json::from_str(r#"{"msg":"later","x":1}"#).expect("parses");
        assert!(matches!(m, super::FromExecutor::Unknown));
    }
}
