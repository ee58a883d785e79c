//! Helpers shared by the test modules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::{
    JobExecutor, JobId, JobInfo, JobSpec, JobState, Payload, ReceiveOptions, Received, Record,
    Session, Stream, WaitMode,
};
use jobs_script::{start_script, Limits, ScriptExecutor, ScriptParams};
use jobs_thread::TYPE_NAME;

/// A session with a script executor.
pub(crate) fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(ScriptExecutor::new()));
    s
}

/// Runs `script` as a thread job to its end; returns its row and records.
pub(crate) fn run_thread(script: &str, limits: &Limits) -> (JobInfo, Vec<Received>) {
    let s = session();
    let job = start_script(&s, script, limits).expect("start");
    let info = job.wait_blocking().expect("wait");
    let recs = s
        .receive(&[job.id()], ReceiveOptions::default())
        .expect("receive");
    (info, recs)
}

/// A record as `(stream, text)`: payloads as a terminal shows them.
pub(crate) fn shown(r: &Record) -> (Stream, String) {
    (
        r.stream,
        String::from_utf8_lossy(&r.payload.to_display_bytes()).into_owned(),
    )
}

/// The JSON of each output record.
pub(crate) fn output_json(recs: &[Record]) -> Vec<serde_json::Value> {
    recs.iter()
        .filter(|r| r.stream == Stream::Output)
        .map(|r| r.payload.to_json())
        .collect()
}

/// Waits until a job is in `want`.
pub(crate) fn wait_state(s: &Session, id: JobId, want: JobState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = s.info(id).expect("info").state;
        if st == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {st}, expected {want}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for a job's first record (the script has started running).
pub(crate) fn wait_first_record(s: &Session, id: JobId) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let keep = ReceiveOptions {
        keep: true,
        ..Default::default()
    };
    while s.receive(&[id], keep).expect("receive").is_empty() {
        assert!(Instant::now() < deadline, "job {id} wrote nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A progress record's percent and activity.
pub(crate) fn progress_of(r: &Record) -> Option<(Option<f64>, String)> {
    match &r.payload {
        Payload::Progress(p) => Some((p.percent, p.activity.clone())),
        _ => None,
    }
}

/// The conformance subject: script specs with params only, as the CLI
/// sends them, on a [`ScriptExecutor`].
pub(crate) struct Subject;

/// A script job's spec with params only, as the CLI sends it.
pub(crate) fn params_spec(script: &str, limits: &Limits) -> JobSpec {
    let params = ScriptParams {
        script: script.to_string(),
        limits: limits.clone(),
    };
    JobSpec::new(TYPE_NAME, script).params(serde_json::to_value(params).expect("params"))
}

impl jobs_core::conformance::Subject for Subject {
    fn executor(&self) -> Arc<dyn JobExecutor> {
        Arc::new(ScriptExecutor::new())
    }
    fn emit(&self, lines: &[&str]) -> JobSpec {
        let body: String = lines
            .iter()
            .map(|l| format!("emit({});\n", serde_json::to_string(l).expect("quote")))
            .collect();
        params_spec(&body, &Limits::default())
    }
    fn sleep(&self, secs: u64) -> JobSpec {
        params_spec(&format!("sleep({secs});"), &Limits::default())
    }
    fn fail(&self, marker: &str) -> JobSpec {
        params_spec(&format!("throw \"failed: {marker}\";"), &Limits::default())
    }
}

/// Waits for all of `ids`.
pub(crate) fn wait_all(s: &Session, ids: &[JobId]) {
    let out = s
        .wait_blocking(ids, WaitMode::All, Some(Duration::from_secs(60)))
        .expect("wait");
    assert!(!out.timed_out);
}
