//! A test executor driven by its spec's params: emit records, sleep, fail,
//! ignore stop, open children, panic.

use std::sync::Arc;
use std::time::Duration;

use std::sync::{Mutex, OnceLock};

use jobs_core::{async_trait, JobContext, JobExecutor, JobFailure, JobSpec, Record, Stream};
use serde_json::json;

/// A process-wide log that `["log", NAME]` steps append to.
pub(crate) fn order_log() -> &'static Mutex<Vec<String>> {
    static LOG: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(Vec::new()))
}

/// Runs the script in `params`: a list of steps.
pub(crate) struct TestExecutor;

/// The type name of [`TestExecutor`].
pub(crate) const TYPE: &str = "TestJob";

/// A spec of the test executor running `steps`.
pub(crate) fn spec(steps: serde_json::Value) -> JobSpec {
    JobSpec::new(TYPE, steps.to_string()).params(json!({ "steps": steps }))
}

#[async_trait]
impl JobExecutor for TestExecutor {
    fn type_name(&self) -> &str {
        TYPE
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        if let Some(live) = spec.payload {
            if let Ok(v) = live.downcast::<Arc<String>>() {
                ctx.output_live(*v);
            }
        }
        let steps = spec.params["steps"].as_array().cloned().unwrap_or_default();
        for step in steps {
            let op = step[0].as_str().unwrap_or("");
            match op {
                "out" => {
                    ctx.output(step[1].as_str().unwrap_or(""));
                }
                "rec" => {
                    let rec: Record = serde_json::from_value(step[1].clone()).expect("record");
                    ctx.emit(rec);
                }
                "sleep" => {
                    let ms = step[1].as_u64().unwrap_or(0);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                        _ = ctx.stopped() => return Ok(()),
                    }
                }
                "sleep_ignoring_stop" => {
                    tokio::time::sleep(Duration::from_millis(step[1].as_u64().unwrap_or(0))).await;
                }
                "fail" => {
                    return Err(JobFailure::with_exit_code(
                        step[1].as_str().unwrap_or("failed"),
                        3,
                    ))
                }
                "panic" => panic!("{}", step[1].as_str().unwrap_or("boom")),
                "block" => {
                    ctx.set_blocked(true).expect("block");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(step[1].as_u64().unwrap_or(0))) => {
                            ctx.set_blocked(false).expect("unblock");
                        }
                        _ = ctx.stopped() => return Ok(()),
                    }
                }
                "disconnect" => {
                    ctx.set_disconnected(true).expect("disconnect");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(step[1].as_u64().unwrap_or(0))) => {
                            ctx.set_disconnected(false).expect("reconnect");
                        }
                        _ = ctx.stopped() => return Ok(()),
                    }
                }
                "children" => {
                    for child in step[1].as_array().cloned().unwrap_or_default() {
                        let mut cs = spec_from(&child);
                        cs.type_name = String::new();
                        cs.location = Some(child["loc"].as_str().unwrap_or("c").to_string());
                        ctx.start_child(cs).expect("child");
                    }
                    ctx.wait_children().await;
                }
                "log" => {
                    order_log()
                        .lock()
                        .expect("log")
                        .push(step[1].as_str().unwrap_or("").to_string());
                }
                "interleave" => {
                    let n = step[1].as_u64().unwrap_or(0);
                    for i in 0..n {
                        let stream = Stream::ALL[(i % 6) as usize];
                        ctx.emit(Record::text(stream, i.to_string()));
                    }
                }
                "stopped_then_block" => {
                    ctx.stopped().await;
                    match ctx.set_blocked(true) {
                        Ok(()) => ctx.output("blocked"),
                        Err(e) => ctx.output(format!("{:?}", e.kind())),
                    };
                    return Ok(());
                }
                "running" => ctx.set_running().expect("set_running"),
                "location" => ctx
                    .set_location(step[1].as_str().unwrap_or(""))
                    .expect("set_location"),
                "exit" => ctx.set_exit_code(step[1].as_i64().unwrap_or(0) as i32),
                "attempt" => {
                    let n = ctx.count_attempt().expect("count_attempt");
                    ctx.output(format!("now attempt {n}"));
                }
                other => return Err(JobFailure::new(format!("unknown step {other}"))),
            }
        }
        Ok(())
    }
}

fn spec_from(child: &serde_json::Value) -> JobSpec {
    spec(child["steps"].clone())
}

/// The conformance subject of the test executor.
pub(crate) struct Subject;

impl jobs_core::conformance::Subject for Subject {
    fn executor(&self) -> Arc<dyn JobExecutor> {
        Arc::new(TestExecutor)
    }
    fn emit(&self, lines: &[&str]) -> JobSpec {
        spec(json!(lines
            .iter()
            .map(|l| json!(["out", l]))
            .collect::<Vec<_>>()))
    }
    fn sleep(&self, secs: u64) -> JobSpec {
        spec(json!([["sleep", secs * 1000]]))
    }
    fn fail(&self, marker: &str) -> JobSpec {
        spec(json!([["fail", format!("failed: {marker}")]]))
    }
}

/// The test executor under another type name, reporting its own start.
pub(crate) struct DeferredExecutor;

/// The type name of [`DeferredExecutor`].
pub(crate) const DEFERRED: &str = "DeferredJob";

#[async_trait]
impl JobExecutor for DeferredExecutor {
    fn type_name(&self) -> &str {
        DEFERRED
    }
    fn reports_start(&self) -> bool {
        true
    }
    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        TestExecutor.run(spec, ctx).await
    }
}
