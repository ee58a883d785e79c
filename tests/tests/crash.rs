//! A daemon killed at any moment: what a detached job wrote reaches the
//! user exactly once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobctl_tests::{eventually, kill9, TestHome};

/// A small xorshift generator seeded from the clock: kill moments differ
/// from run to run, and a failure prints its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn a_detached_jobs_output_survives_ten_sigkills_with_no_gap_and_no_duplicate() {
    const LINES: u32 = 20_000;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let home = TestHome::new();
    // About one line every 0.2 ms for four seconds.
    let line = format!(
        "i=0; while [ $i -lt {LINES} ]; do echo $i; i=$((i+1)); \
         [ $((i % 50)) = 0 ] && sleep 0.01; done; true"
    );
    let id = home.start(&["--detached", "-c", &line]).to_string();
    let mut received = String::new();
    for round in 0..10 {
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 300));
        if round % 3 == 1 {
            // Some of it consumed between crashes, some left for later.
            received.push_str(&home.ok(&["receive", &id]));
        }
        // Any command brings the daemon back, and it takes the job over.
        home.ok(&["list", &id]);
        let pid = home.daemon_pid().expect("the daemon runs");
        kill9(pid);
        assert!(
            eventually(Duration::from_secs(10), || !jobctl_tests::alive(pid)),
            "the daemon is gone"
        );
    }
    home.ok(&["wait", &id, "--timeout", "60"]);
    received.push_str(&home.ok(&["receive", &id]));
    let lines: Vec<&str> = received.lines().collect();
    let expected: Vec<String> = (0..LINES).map(|i| i.to_string()).collect();
    if lines != expected {
        let first_bad = lines
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(lines.len().min(expected.len()));
        panic!(
            "seed {seed}: received {} lines for {LINES}; first difference at line {first_bad}: {:?} for {:?}",
            lines.len(),
            lines.get(first_bad),
            expected.get(first_bad)
        );
    }
    assert_eq!(home.job(id.parse().expect("id"))["state"], "Completed");
}
