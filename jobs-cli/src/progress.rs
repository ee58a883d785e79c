//! The one progress line that `wait` and `receive --wait` of a batch show
//! on a terminal: done/total, failed, running, elapsed and ETA, drawn by
//! `indicatif` on stderr. Nothing of it when stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jobs_core::BATCH_TYPE;
use jobs_protocol::home::Home;
use jobs_protocol::{ChildCounts, ListRequest, Op, Response};

use crate::client::Client;

/// How often the line asks the daemon how far the batch is.
const EVERY: Duration = Duration::from_millis(200);

/// A progress line being drawn; dropping it clears the line.
pub(crate) struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the progress line of the first batch among `ids`, if stderr is a
/// terminal and there is one. It asks on a connection of its own.
pub(crate) fn show(home: &Home, ids: &[u64]) -> Option<Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let mut side = Client::connect(home).ok().flatten()?;
    // The rows alone (`list`), not `show`: a batch's children rows can be
    // 100,000 of them.
    let batch = match side.call(Op::List(ListRequest {
        ids: ids.to_vec(),
        ..ListRequest::default()
    })) {
        Ok(Response::Jobs(rows)) => rows.into_iter().find(|j| j.type_name == BATCH_TYPE)?.id,
        _ => return None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || draw(side, batch, &flag))
        .ok()?;
    Some(Progress {
        stop,
        thread: Some(thread),
    })
}

/// The line's text after the bar.
pub(crate) fn message(c: &ChildCounts) -> String {
    format!("{} failed, {} running", c.failed, c.running)
}

fn draw(mut side: Client, batch: u64, stop: &AtomicBool) {
    // Hidden until the first answer: the line never shows empty counts.
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let mut shown = false;
    let style = ProgressStyle::with_template(
        "{bar:30} {pos}/{len} done, {msg}, {elapsed} elapsed, ETA {eta}",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    while !stop.load(Ordering::SeqCst) {
        match side.call(Op::Progress { id: batch }) {
            Ok(Response::Progress(c)) => {
                bar.set_length(c.total as u64);
                bar.set_position(c.done as u64);
                bar.set_message(message(&c));
                if !shown {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                    shown = true;
                }
                if c.parent_done {
                    break;
                }
            }
            _ => break,
        }
        std::thread::sleep(EVERY);
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_counts_failed_and_running() {
        let c = ChildCounts {
            total: 10,
            done: 4,
            failed: 1,
            running: 2,
            parent_done: false,
        };
        assert_eq!(message(&c), "1 failed, 2 running");
    }
}
