//! The records side channel: JSON lines, each one [`Record`], from the
//! child's `JOBCTL_RECORDS_FD`.

use jobs_core::{ErrorRecord, Payload, Record, Stream};

pub use jobs_core::channel::{FAILURE_CATEGORY, RECORDS_FD_ENV};

/// The longest record line accepted; a longer one is dropped with an error
/// record, so a runaway writer cannot make the session hold unbounded text.
pub const MAX_RECORD_LINE: usize = 16 << 20;

/// Parses one line of the channel. Blank lines are skipped (`None`); a line
/// that is not a record becomes an error record that quotes its start.
pub fn parse_record_line(line: &[u8]) -> Option<Record> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(match serde_json::from_slice::<Record>(line) {
        Ok(rec) => rec,
        Err(e) => malformed(&format!("{e}"), line),
    })
}

fn malformed(why: &str, line: &[u8]) -> Record {
    const QUOTE: usize = 200;
    let shown = String::from_utf8_lossy(&line[..line.len().min(QUOTE)]);
    let more = if line.len() > QUOTE { "…" } else { "" };
    Record::new(
        Stream::Error,
        Payload::Error(ErrorRecord {
            message: format!("malformed record on {RECORDS_FD_ENV} ({why}): {shown}{more}"),
            category: Some("MalformedRecord".into()),
            details: None,
        }),
    )
}

/// Splits the channel's bytes into lines and parses them, holding at most
/// one partial line (bounded by [`MAX_RECORD_LINE`]).
#[derive(Default)]
pub(crate) struct LineDecoder {
    partial: Vec<u8>,
    /// Set while skipping the rest of an over-long line.
    skipping: bool,
}

impl LineDecoder {
    /// Feeds bytes; calls `emit` for every record completed by them.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(Record)) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let (head, tail) = (&bytes[..nl], &bytes[nl + 1..]);
            if self.skipping {
                self.skipping = false;
            } else if self.partial.is_empty() {
                emit_line(head, emit);
            } else if self.partial.len() + head.len() > MAX_RECORD_LINE {
                self.partial.clear();
                emit(too_long());
            } else {
                self.partial.extend_from_slice(head);
                emit_line(&self.partial, emit);
                self.partial.clear();
            }
            bytes = tail;
        }
        if self.skipping || bytes.is_empty() {
            return;
        }
        if self.partial.len() + bytes.len() > MAX_RECORD_LINE {
            self.partial = Vec::new();
            self.skipping = true;
            emit(too_long());
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    /// How many bytes of an unfinished line are held.
    pub(crate) fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Ends the channel: a last line without a newline still counts.
    pub(crate) fn finish(&mut self, emit: &mut impl FnMut(Record)) {
        if !self.skipping && !self.partial.is_empty() {
            emit_line(&self.partial, emit);
        }
        self.partial = Vec::new();
        self.skipping = false;
    }
}

/// The reason a failure record carries, if `record` is one.
pub(crate) fn failure_reason(record: &Record) -> Option<String> {
    match &record.payload {
        jobs_core::Payload::Error(e) if e.category.as_deref() == Some(FAILURE_CATEGORY) => {
            Some(e.message.clone())
        }
        _ => None,
    }
}

fn emit_line(line: &[u8], emit: &mut impl FnMut(Record)) {
    if let Some(rec) = parse_record_line(line) {
        emit(rec);
    }
}

fn too_long() -> Record {
    malformed(
        &format!("line longer than {MAX_RECORD_LINE} bytes, dropped"),
        b"",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<Record> {
        let mut d = LineDecoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut |r| out.push(r));
        }
        d.finish(&mut |r| out.push(r));
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        let recs = decode(&[
            br#"{"stream":"warning","kind":"text","data":"care"#,
            b"ful\"}\n\n{\"stream\":\"progress\",\"kind\":\"progress\",",
            br#""data":{"percent":50,"activity":"copy"}}"#,
        ]);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].stream, Stream::Warning);
        assert_eq!(recs[0].payload.to_display_bytes(), b"careful");
        match &recs[1].payload {
            Payload::Progress(p) => assert_eq!(p.percent, Some(50.0)),
            other => panic!("not progress: {other:?}"),
        }
    }

    #[test]
    fn malformed_lines_become_error_records() {
        let recs = decode(&[b"not json\n{\"stream\":\"nope\",\"kind\":\"text\",\"data\":1}\n"]);
        assert_eq!(recs.len(), 2);
        for r in &recs {
            assert_eq!(r.stream, Stream::Error);
            let msg = String::from_utf8_lossy(&r.payload.to_display_bytes()).into_owned();
            assert!(msg.starts_with("malformed record"), "{msg}");
        }
    }

    #[test]
    fn over_long_line_is_dropped_and_the_next_one_kept() {
        let big = vec![b'x'; MAX_RECORD_LINE + 10];
        let recs = decode(&[
            &big[..MAX_RECORD_LINE / 2],
            &big[MAX_RECORD_LINE / 2..],
            b"\n{\"stream\":\"debug\",\"kind\":\"text\",\"data\":\"d\"}\n",
        ]);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].stream, Stream::Error);
        assert_eq!(recs[1].stream, Stream::Debug);
    }
}
