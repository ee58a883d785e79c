//! The records side channel: every stream and kind, malformed lines.

use jobs_core::{JobState, Payload, Stream};
use jobs_process::ProcessSpec;

use super::support::{run, session, text};

#[test]
fn side_channel_records_of_every_stream() {
    let lines = [
        r#"{"stream":"warning","kind":"text","data":"careful"}"#,
        r#"{"stream":"verbose","kind":"text","data":"chatty"}"#,
        r#"{"stream":"debug","kind":"text","data":"x=1"}"#,
        r#"{"stream":"information","kind":"text","data":"fyi"}"#,
        r#"{"stream":"progress","kind":"progress","data":{"percent":50,"activity":"copy","status":"half"}}"#,
        r#"{"stream":"output","kind":"value","data":{"files":3}}"#,
        r#"{"stream":"error","kind":"error","data":{"message":"bad file"}}"#,
        r#"{"stream":"output","kind":"bytes","data":[0,255,10]}"#,
        r#"this is not a record"#,
        r#"{"stream":"warning","kind":"text","data":"after the bad one"}"#,
    ];
    let script: String = lines
        .iter()
        .map(|l| format!("printf '%s\\n' '{l}' >>/dev/fd/$JOBCTL_RECORDS_FD\n"))
        .collect::<String>()
        + "echo plain";
    let s = session();
    let (info, recs) = run(&s, ProcessSpec::shell(script));
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    let channel: Vec<_> = recs
        .iter()
        .filter(|r| !matches!(r.record.payload, Payload::Bytes(ref b) if b == b"plain\n"))
        .map(|r| &r.record)
        .collect();
    assert_eq!(channel.len(), lines.len(), "{channel:?}");
    let streams: Vec<Stream> = channel.iter().map(|r| r.stream).collect();
    assert_eq!(
        streams,
        [
            Stream::Warning,
            Stream::Verbose,
            Stream::Debug,
            Stream::Information,
            Stream::Progress,
            Stream::Output,
            Stream::Error,
            Stream::Output,
            Stream::Error,
            Stream::Warning
        ]
    );
    assert_eq!(channel[0].payload.to_display_bytes(), b"careful");
    match &channel[4].payload {
        Payload::Progress(p) => {
            assert_eq!(p.percent, Some(50.0));
            assert_eq!(p.activity, "copy");
            assert_eq!(p.status, "half");
        }
        other => panic!("not progress: {other:?}"),
    }
    match &channel[5].payload {
        Payload::Value(v) => assert_eq!(v, &serde_json::json!({"files": 3})),
        other => panic!("not a value: {other:?}"),
    }
    match &channel[6].payload {
        Payload::Error(e) => assert_eq!(e.message, "bad file"),
        other => panic!("not an error record: {other:?}"),
    }
    assert_eq!(channel[7].payload.to_display_bytes(), [0, 255, 10]);
    match &channel[8].payload {
        Payload::Error(e) => {
            assert!(e.message.contains("malformed record"), "{}", e.message);
            assert!(e.message.contains("this is not a record"), "{}", e.message);
        }
        other => panic!("not an error record: {other:?}"),
    }
    assert_eq!(text(&recs, Stream::Warning), "carefulafter the bad one");
}

#[test]
fn a_last_record_without_newline_and_binary_garbage() {
    let s = session();
    let script = r#"exec 4>>/dev/fd/$JOBCTL_RECORDS_FD
printf '\377\000garbage\n' >&4; printf '{"stream":"debug","kind":"text","data":"last"}' >&4"#;
    let (info, recs) = run(&s, ProcessSpec::shell(script));
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0].record.stream, Stream::Error);
    assert_eq!(recs[1].record.stream, Stream::Debug);
    assert_eq!(recs[1].record.payload.to_display_bytes(), b"last");
}

#[test]
fn a_failure_record_becomes_the_reason_of_a_failed_job() {
    let script = r#"printf '%s\n' '{"stream":"error","kind":"error","data":{"message":"quota exceeded","category":"JobFailure"}}' >>/dev/fd/$JOBCTL_RECORDS_FD
exit 7"#;
    let s = session();
    let (info, recs) = run(&s, ProcessSpec::shell(script));
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.reason.as_deref(), Some("quota exceeded"));
    assert_eq!(info.exit_code, Some(7));
    assert!(
        recs.is_empty(),
        "the failure record is the reason, not a record: {recs:?}"
    );
    // A job that exits 0 completes whatever it said before.
    let (ok, _) = run(
        &s,
        ProcessSpec::shell(
            r#"printf '%s\n' '{"stream":"error","kind":"error","data":{"message":"x","category":"JobFailure"}}' >>/dev/fd/$JOBCTL_RECORDS_FD"#,
        ),
    );
    assert_eq!(ok.state, JobState::Completed);
}
