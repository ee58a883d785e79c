//! A cache of idle OS threads: a job's closure runs on a thread that just
//! finished another job if one is waiting, else on a new thread. Threads
//! that stay idle for [`IDLE`] end. There is no upper bound here: the
//! session's throttle bounds running jobs, and an abandoned job keeps its
//! thread busy without holding up the others.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long an idle thread waits for another job before it ends.
const IDLE: Duration = Duration::from_secs(5);

type Task = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
pub(crate) struct Pool {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    tasks: VecDeque<Task>,
    idle: usize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Tasks run outside the lock and catch their own panics, so the
        // state is never left half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `task` on an idle thread, or on a new one.
    pub(crate) fn execute(self: &Arc<Self>, task: Task) -> io::Result<()> {
        let mut st = self.lock();
        if st.idle > st.tasks.len() {
            st.tasks.push_back(task);
            drop(st);
            self.wake.notify_one();
            return Ok(());
        }
        drop(st);
        let pool = Arc::clone(self);
        std::thread::Builder::new()
            .name("thread-job".into())
            .spawn(move || {
                task();
                pool.serve();
            })
            .map(|_| ())
    }

    /// Takes queued tasks until none comes for [`IDLE`].
    fn serve(&self) {
        let mut st = self.lock();
        loop {
            if let Some(task) = st.tasks.pop_front() {
                drop(st);
                task();
                st = self.lock();
                continue;
            }
            st.idle += 1;
            let (guard, res) = self
                .wake
                .wait_timeout(st, IDLE)
                .unwrap_or_else(|p| p.into_inner());
            st = guard;
            st.idle -= 1;
            if res.timed_out() && st.tasks.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_every_task_and_reuses_an_idle_thread() {
        let pool = Arc::new(Pool::default());
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let tx = tx.clone();
            pool.execute(Box::new(move || {
                tx.send((i, std::thread::current().id())).expect("send");
            }))
            .expect("execute");
            // Wait until the thread took the task and is idle again: the
            // next task must reuse it.
            while {
                let st = pool.lock();
                st.idle == 0 || !st.tasks.is_empty()
            } {
                std::thread::yield_now();
            }
        }
        drop(tx);
        let got: Vec<_> = rx.iter().collect();
        assert_eq!(
            got.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
        let threads: std::collections::HashSet<_> = got.iter().map(|(_, t)| *t).collect();
        assert_eq!(threads.len(), 1);
    }
}
