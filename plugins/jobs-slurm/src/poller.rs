//! One poller per executor: a thread that, once per interval, asks each
//! cluster about all of the executor's jobs on it in a single `squeue`
//! call (and a single `sacct` call for the jobs `squeue` no longer lists),
//! then hands every job its latest observation. Slurm has no push events;
//! this keeps the controller's load at one query per interval however
//! many jobs are followed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::status::SlurmStatus;
use crate::tools::Tools;

/// What the poller last learnt about one job.
#[derive(Clone, Debug)]
pub(crate) enum Observation {
    /// Not polled yet.
    Waiting,
    /// Slurm's view of the job.
    Seen(SlurmStatus),
    /// Neither `squeue` nor `sacct` knows the job, this many polls in a row.
    Missing(u32),
    /// The cluster could not be asked.
    QueryFailed(String),
}

/// The shared poller of one executor.
pub(crate) struct Poller {
    shared: Arc<Shared>,
}

struct Shared {
    tools: Tools,
    interval: Duration,
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    next_key: u64,
    jobs: HashMap<u64, Entry>,
    /// Poll now rather than at the end of the interval.
    wake: bool,
    /// Whether the thread runs (it ends when no job is left).
    running: bool,
}

struct Entry {
    slurm_id: String,
    conf: Option<PathBuf>,
    misses: u32,
    tx: watch::Sender<Observation>,
}

/// One followed job; unregisters itself when dropped.
pub(crate) struct Watch {
    /// Changes after every poll.
    pub(crate) rx: watch::Receiver<Observation>,
    key: u64,
    shared: Arc<Shared>,
}

impl Watch {
    /// Asks for a poll now (after a stop, to see the end promptly).
    pub(crate) fn poll_now(&self) {
        let mut st = lock(&self.shared.state);
        st.wake = true;
        self.shared.cv.notify_all();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        lock(&self.shared.state).jobs.remove(&self.key);
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Poller {
    /// A poller asking every `interval` with `tools`; its thread starts
    /// with the first job.
    pub(crate) fn new(tools: Tools, interval: Duration) -> Poller {
        Poller {
            shared: Arc::new(Shared {
                tools,
                interval,
                state: Mutex::new(State::default()),
                cv: Condvar::new(),
            }),
        }
    }

    /// Follows Slurm job `slurm_id` of the cluster of `conf`.
    pub(crate) fn watch(
        &self,
        slurm_id: &str,
        conf: Option<PathBuf>,
    ) -> Result<Watch, std::io::Error> {
        let (tx, rx) = watch::channel(Observation::Waiting);
        let mut st = lock(&self.shared.state);
        let key = st.next_key;
        st.next_key += 1;
        st.jobs.insert(
            key,
            Entry {
                slurm_id: slurm_id.to_string(),
                conf,
                misses: 0,
                tx,
            },
        );
        let watch = Watch {
            rx,
            key,
            shared: Arc::clone(&self.shared),
        };
        if !st.running {
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name("slurm-poller".into())
                .spawn(move || shared.run())?;
            st.running = true;
        }
        Ok(watch)
    }
}

impl Shared {
    fn run(&self) {
        loop {
            // The jobs to ask about, by cluster.
            let groups = {
                let mut st = lock(&self.state);
                if st.jobs.is_empty() {
                    st.running = false;
                    return;
                }
                st.wake = false;
                let mut groups: BTreeMap<Option<PathBuf>, Vec<String>> = BTreeMap::new();
                for e in st.jobs.values() {
                    groups
                        .entry(e.conf.clone())
                        .or_default()
                        .push(e.slurm_id.clone());
                }
                groups
            };
            let answers: Vec<_> = groups
                .into_iter()
                .map(|(conf, mut ids)| {
                    ids.sort();
                    ids.dedup();
                    let found = self.query(&ids, conf.as_deref());
                    (conf, found)
                })
                .collect();
            {
                let mut st = lock(&self.state);
                for e in st.jobs.values_mut() {
                    let Some((_, found)) = answers.iter().find(|(c, _)| *c == e.conf) else {
                        // Registered during the query: polled next time.
                        continue;
                    };
                    let obs = match found {
                        Err(msg) => Observation::QueryFailed(msg.clone()),
                        Ok(map) => match map.get(&e.slurm_id) {
                            Some(status) => {
                                e.misses = 0;
                                Observation::Seen(status.clone())
                            }
                            None => {
                                e.misses += 1;
                                Observation::Missing(e.misses)
                            }
                        },
                    };
                    // Sent every poll, changed or not: the job reads its
                    // output files on each.
                    e.tx.send_replace(obs);
                }
            }
            let st = lock(&self.state);
            let _ = self
                .cv
                .wait_timeout_while(st, self.interval, |st| !st.wake)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// One cluster's answer for `ids`: `squeue`, then `sacct` for the ones
    /// the controller no longer lists.
    fn query(
        &self,
        ids: &[String],
        conf: Option<&std::path::Path>,
    ) -> Result<HashMap<String, SlurmStatus>, String> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut found = self
            .tools
            .squeue(&refs, conf)
            .map_err(|e| jobs_core::JobFailure::from_error(&e).reason)?;
        let missing: Vec<&str> = refs
            .iter()
            .copied()
            .filter(|id| !found.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            // Accounting may be missing altogether; the job then shows as
            // missing, which the job side tolerates for a while.
            if let Ok(more) = self.tools.sacct(&missing, conf) {
                found.extend(more);
            }
        }
        Ok(found)
    }
}
