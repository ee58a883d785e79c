//! `jobctl top` on a real terminal: a tmux pane of 100×30 on a private
//! tmux server, read with `tmux capture-pane`. tmux is required (scripts/test
//! installs it): without it these tests fail, they do not skip.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use jobctl_tests::{jobctl_bin, TestHome};

/// How long anything on screen may take to show: a bound on a hang only.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A private tmux server with one session; killed on drop, failed or not.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A 100×30 session running `sh` with the test's home in its
    /// environment.
    fn new(home: &TestHome) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.as_ref().is_ok_and(|o| o.status.success()),
            "tmux is needed for the live view's tests (apt-get install tmux): {version:?}"
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let socket = format!("jobctl-top-{}-{nanos}", std::process::id());
        let t = Tmux { socket };
        let home_env = format!("JOBCTL_HOME={}", home.path().display());
        let out = t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "100",
            "-y",
            "30",
            "-e",
            &home_env,
            "-e",
            "PS1=shell$ ",
            "-e",
            "TERM=xterm-256color",
            "sh",
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs")
    }

    /// Types text, then presses Enter if `enter`.
    fn type_text(&self, text: &str, enter: bool) {
        assert!(self
            .tmux(&["send-keys", "-t", "top", "-l", text])
            .status
            .success());
        if enter {
            self.key("Enter");
        }
    }

    /// Presses a key by its tmux name (`Down`, `Enter`, `s`).
    fn key(&self, key: &str) {
        assert!(self.tmux(&["send-keys", "-t", "top", key]).status.success());
    }

    /// The pane's text.
    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", "top"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `ok`; returns it.
    fn wait_for(&self, home: &TestHome, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let begin = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if begin.elapsed() > SCREEN_TIMEOUT {
                panic!(
                    "{what}: not on screen within {SCREEN_TIMEOUT:?}; the screen:\n{s}\nthe daemon's log ends:\n{}",
                    home.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The table line of the job named `name` (its second field), split.
fn row<'s>(screen: &'s str, name: &str) -> Option<Vec<&'s str>> {
    screen
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&name))
}

/// The percent the progress bar of `name` shows.
fn percent(screen: &str, name: &str) -> Option<u32> {
    row(screen, name)?
        .iter()
        .find_map(|f| f.strip_suffix('%')?.parse().ok())
}

#[test]
fn top_follows_the_session_and_stops_a_job() {
    let home = TestHome::new();
    let first = home.start(&["--name", "sleeper", "--", "sleep", "300"]);
    let tmux = Tmux::new(&home);
    let cmd = format!(
        "echo before-top; {} top; echo top-exit=$?",
        jobctl_bin().display()
    );
    tmux.type_text(&cmd, true);
    tmux.wait_for(&home, "the table with the first job", |s| {
        s.contains("PSJobTypeName") && row(s, "sleeper").is_some_and(|r| r.contains(&"Running"))
    });

    // Jobs started after the view: they appear, with their states.
    let fresh = home.start(&["--name", "fresh", "--", "sleep", "300"]);
    let prog = home.start(&[
        "--name",
        "prog",
        "--type",
        "thread",
        "-e",
        "for i in 1..=100 { progress(i, \"step\"); sleep(0.2) }",
    ]);
    let quick = home.start(&["--name", "quick", "-c", "exit 3"]);
    assert_eq!((first, fresh, prog, quick), (1, 2, 3, 4));
    let s = tmux.wait_for(&home, "the new jobs and their states", |s| {
        row(s, "fresh").is_some_and(|r| r.contains(&"Running"))
            && row(s, "prog").is_some_and(|r| r.contains(&"Running"))
            && row(s, "quick").is_some_and(|r| r.contains(&"Failed"))
    });
    assert!(s.contains("daemon pid"), "{s}");

    // The progress job's bar moves.
    let s = tmux.wait_for(&home, "the progress bar", |s| percent(s, "prog").is_some());
    let was = percent(&s, "prog").unwrap_or_default();
    tmux.wait_for(&home, "the progress bar moving", |s| {
        percent(s, "prog").is_some_and(|p| p > was)
    });

    // The second line is `fresh`: select it, stop it, confirm.
    tmux.key("Down");
    tmux.wait_for(&home, "fresh selected", |s| s.contains("2 (fresh): output"));
    tmux.key("s");
    tmux.wait_for(&home, "the question", |s| s.contains("Stop job 2 (fresh)?"));
    tmux.key("y");
    tmux.wait_for(&home, "fresh stopped", |s| {
        row(s, "fresh").is_some_and(|r| r.contains(&"Stopped"))
    });
    assert_eq!(home.job(fresh)["state"], "Stopped");
    assert_eq!(home.job(first)["state"], "Running");

    // `r` asks too, and any other key than `y` keeps the job.
    tmux.key("r");
    tmux.wait_for(&home, "the remove question", |s| {
        s.contains("Remove job 2 (fresh)?")
    });
    tmux.key("n");
    tmux.wait_for(&home, "cancelled", |s| s.contains("cancelled"));
    assert_eq!(home.job(fresh)["state"], "Stopped");

    // p suspends the selected job and c resumes it, with no question.
    tmux.key("Up");
    tmux.wait_for(&home, "sleeper selected", |s| {
        s.contains("1 (sleeper): output")
    });
    tmux.key("p");
    tmux.wait_for(&home, "sleeper suspended", |s| {
        row(s, "sleeper").is_some_and(|r| r.contains(&"Suspended"))
    });
    assert_eq!(home.job(first)["state"], "Suspended");
    tmux.key("c");
    tmux.wait_for(&home, "sleeper running again", |s| {
        row(s, "sleeper").is_some_and(|r| r.contains(&"Running"))
    });
    assert_eq!(home.job(first)["state"], "Running");

    // A resize to 80×24 redraws to fit: the table gives up columns, the
    // status and help lines stay at the bottom.
    let resized = tmux.tmux(&["resize-window", "-t", "top", "-x", "80", "-y", "24"]);
    assert!(resized.status.success(), "{resized:?}");
    let s = tmux.wait_for(&home, "the view at 80x24", |s| {
        s.lines().count() <= 24
            && s.lines().nth(22).is_some_and(|l| l.contains("daemon pid"))
            && !s.lines().any(|l| l.contains("Location"))
    });
    assert!(
        row(&s, "fresh").is_some_and(|r| r.contains(&"Stopped")),
        "{s}"
    );
    assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");

    // q gives the terminal back as it was.
    tmux.key("q");
    let s = tmux.wait_for(&home, "the shell again", |s| s.contains("top-exit=0"));
    assert!(s.contains("before-top"), "{s}");
    assert!(!s.contains("PSJobTypeName"), "{s}");
    let alt = tmux.tmux(&["display-message", "-p", "-t", "top", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alt.stdout).trim(), "0");
    tmux.type_text(
        "stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon -e -echo -e echo",
        true,
    );
    let s = tmux.wait_for(&home, "the terminal's modes", |s| {
        s.lines()
            .any(|l| l.trim() == "icanon" || l.trim() == "-icanon")
    });
    let modes: Vec<&str> = s.lines().map(str::trim).collect();
    assert!(modes.contains(&"icanon") && modes.contains(&"echo"), "{s}");
}

#[test]
fn top_refuses_without_a_terminal() {
    let home = TestHome::new();
    let r = home.run(&["top"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("terminal"), "{}", r.stderr);
}

#[test]
fn top_gives_the_terminal_back_on_sigterm() {
    let home = TestHome::new();
    home.start(&["--name", "sleeper", "--", "sleep", "300"]);
    let tmux = Tmux::new(&home);
    let cmd = format!("{} top; echo top-exit=$?", jobctl_bin().display());
    tmux.type_text(&cmd, true);
    tmux.wait_for(&home, "the table", |s| row(s, "sleeper").is_some());
    let shell = tmux.tmux(&["display-message", "-p", "-t", "top", "#{pane_pid}"]);
    let shell = String::from_utf8_lossy(&shell.stdout).trim().to_string();
    let children = Command::new("pgrep")
        .args(["-P", &shell])
        .output()
        .expect("pgrep runs");
    let top = String::from_utf8_lossy(&children.stdout);
    let top: i32 = top
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no child of the pane's shell {shell}: {children:?}"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(top),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill -TERM");
    // The echo's line, not the typed command's.
    let s = tmux.wait_for(&home, "the shell again", |s| {
        s.lines().any(|l| l.starts_with("top-exit="))
    });
    assert!(s.lines().any(|l| l == "top-exit=143"), "{s}");
    assert!(!s.contains("PSJobTypeName"), "{s}");
    let alt = tmux.tmux(&["display-message", "-p", "-t", "top", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alt.stdout).trim(), "0");
}
