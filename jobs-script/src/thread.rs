//! Scripts as thread jobs: output values stay live in the session.

use std::sync::Arc;

use jobs_core::{
    async_trait, Error, JobContext, JobExecutor, JobFailure, JobInfo, JobSpec, Live, Payload,
    Record, Session, Stream, SuspendError,
};
use jobs_thread::{ThreadExecutor, ThreadJob, ThreadWork, TYPE_NAME};
use rhai::Dynamic;
use serde::{Deserialize, Serialize};

use crate::value::render_live;
use crate::{run_script, Limits, Sink};

/// The executor parameters of a script job: what crosses a process or
/// plugin boundary, and what a durable job table stores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptParams {
    /// The script's source text.
    pub script: String,
    /// Its own limits: those it leaves unset come from the executor
    /// ([`ScriptExecutor::limits`]), then from [`Limits::defaults`].
    #[serde(default)]
    pub limits: Limits,
}

/// Emits a thread job's records through its context; output values are
/// live `rhai::Dynamic`s that render as JSON on demand.
struct ThreadSink(JobContext);

impl Sink for ThreadSink {
    fn output(&self, value: Dynamic) {
        let live = Live::with_render(Arc::new(value), render_live);
        self.0
            .emit(Record::new(Stream::Output, Payload::Live(live)));
    }

    fn record(&self, record: Record) {
        self.0.emit(record);
    }
}

/// The thread work that runs `script`.
pub fn script_work(script: String, limits: Limits) -> ThreadWork {
    ThreadWork::new(move |ctx: JobContext| {
        let stop = ctx.stop_token();
        let sink: Arc<dyn Sink> = Arc::new(ThreadSink(ctx));
        run_script(&script, &limits, sink, &stop).map_err(JobFailure::from)
    })
}

/// A `ThreadJob` spec that runs `script`: its command is the script text, its
/// params a [`ScriptParams`], and it carries the work as its payload, so it
/// runs on a [`ThreadExecutor`] as well as on a [`ScriptExecutor`].
pub fn script_spec(script: &str, limits: &Limits) -> JobSpec {
    let params = ScriptParams {
        script: script.to_string(),
        limits: limits.clone(),
    };
    JobSpec::new(TYPE_NAME, script)
        .params(serde_json::to_value(&params).unwrap_or_default())
        .payload(Box::new(script_work(script.to_string(), limits.clone())))
}

/// Starts `script` as a thread job of `session` and returns its typed
/// handle: [`ThreadJob::receive`] gives the script's output values as the
/// very `Arc<rhai::Dynamic>`s it emitted. Registers a [`ScriptExecutor`] if
/// the session has no `ThreadJob` executor yet.
pub fn start_script(
    session: &Session,
    script: &str,
    limits: &Limits,
) -> Result<ThreadJob<Dynamic>, Error> {
    start_script_spec(session, script_spec(script, limits))
}

/// As [`start_script`], for a spec made by [`script_spec`] and then given a
/// name, throttle or location.
pub fn start_script_spec(session: &Session, spec: JobSpec) -> Result<ThreadJob<Dynamic>, Error> {
    if !session
        .executor_types()
        .iter()
        .any(|t| t.eq_ignore_ascii_case(TYPE_NAME))
    {
        session.register(Arc::new(ScriptExecutor::new()));
    }
    let id = session.start(spec)?;
    Ok(ThreadJob::attach(session, id))
}

/// The `ThreadJob` executor of a session that runs scripts: a
/// [`ThreadExecutor`] that also takes a spec with [`ScriptParams`] and no
/// payload (a spec that came from the CLI or a stored table) and runs the
/// script on a thread. Closures run as on the plain executor.
///
/// The executor's [`Limits`] (see [`ScriptExecutor::limits`]) apply to each
/// of its script jobs, a spec with a payload from [`script_spec`] too, for
/// every limit the job's own [`ScriptParams::limits`] leave unset.
#[derive(Clone, Debug, Default)]
pub struct ScriptExecutor {
    threads: ThreadExecutor,
    limits: Limits,
}

impl ScriptExecutor {
    /// A script executor over a default [`ThreadExecutor`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A script executor over `threads` (its throttle and grace period).
    pub fn with_threads(threads: ThreadExecutor) -> Self {
        ScriptExecutor {
            threads,
            limits: Limits::default(),
        }
    }

    /// Sets the limits of this executor's scripts (a session's limits): a
    /// job's own limits override them one by one, and [`Limits::defaults`]
    /// fill in what neither sets.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

#[async_trait]
impl JobExecutor for ScriptExecutor {
    fn type_name(&self) -> &str {
        TYPE_NAME
    }

    fn default_throttle(&self) -> Option<usize> {
        self.threads.default_throttle()
    }

    async fn run(&self, mut spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        // A script spec is run from its params, with this executor's limits
        // under the job's own; any other payload (a closure) as it is.
        match serde_json::from_value::<ScriptParams>(spec.params.clone()) {
            Ok(params) => {
                let limits = params.limits.or(&self.limits);
                spec.payload = Some(Box::new(script_work(params.script, limits)));
            }
            Err(e) if spec.payload.is_none() => {
                return Err(JobFailure::new(format!(
                    "not a script job's parameters: {e}"
                )));
            }
            Err(_) => {}
        }
        self.threads.run(spec, ctx).await
    }

    fn resumable(&self, _info: &JobInfo) -> bool {
        false
    }

    fn can_suspend(&self) -> bool {
        self.threads.can_suspend()
    }

    async fn suspend(&self, ctx: &JobContext) -> Result<(), SuspendError> {
        self.threads.suspend(ctx).await
    }

    async fn resume_suspended(&self, ctx: &JobContext) -> Result<(), SuspendError> {
        self.threads.resume_suspended(ctx).await
    }
}
