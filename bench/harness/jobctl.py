"""Building jobctl in release mode and running it in throwaway sessions.

Each measurement gets a fresh session (its own JOBCTL_HOME under the run's
temp dir); the session's daemon is started before the clock runs and ended
by pid afterwards, also when the measurement fails.
"""

import json
import os
import re
import subprocess
import time

from . import proc
from .proc import Failed, run


def target_dir(root):
    """Cargo's target directory for the workspace (honours CARGO_TARGET_DIR)."""
    p = run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        timeout=120,
    )
    return json.loads(p.stdout)["target_directory"]


def build(root, log):
    """Builds jobctl in release mode; returns (binary path, seconds) or raises Failed."""
    log("building jobctl (scripts/build-release: the daemon, and the static jobctl client)")
    t0 = time.monotonic()
    run([os.path.join(root, "scripts", "build-release"), "--quiet"], timeout=1800)
    binary = os.path.join(target_dir(root), "release", "jobctl")
    if not os.access(binary, os.X_OK):
        raise Failed(f"no binary at {binary} after the build")
    return binary, time.monotonic() - t0


class Jobctl:
    """The built binary and the temp dir its sessions live in."""

    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.count = 0
        self.version = (
            run([binary, "--version"], check=False).stdout.decode(errors="replace").strip()
        )

    def session(self, label, env=None):
        """A fresh session with its daemon running."""
        self.count += 1
        home = os.path.join(self.work, f"jobctl-{label}-{self.count}")
        os.makedirs(home)
        return Session(self.binary, home, env)


class Session:
    """One JOBCTL_HOME; use as a context manager so the daemon always ends."""

    def __init__(self, binary, home, env=None):
        self.binary = binary
        self.home = home
        self.env = dict(env or os.environ, JOBCTL_HOME=home)
        self.env.pop("JOBCTL_PLUGIN_PATH", None)
        self.pid = None

    def __enter__(self):
        self("daemon", "start")
        self.pid = self.daemon_pid()
        if self.pid:
            proc.own(self.pid, "jobctl daemon", stop=lambda: self("daemon", "stop", timeout=30))
        return self

    def __exit__(self, *exc):
        if self.pid:
            proc.release(self.pid)
        else:
            self("daemon", "stop", check=False, timeout=30)
        return False

    def __call__(self, *args, check=True, timeout=600, stdout=subprocess.PIPE):
        """Runs `jobctl ARGS` in this session."""
        return run([self.binary, *args], env=self.env, check=check, timeout=timeout, stdout=stdout)

    def daemon_pid(self):
        """The daemon's pid from `jobctl daemon status`, or None."""
        out = self("daemon", "status", check=False).stdout.decode(errors="replace")
        m = re.search(r"pid (\d+)", out)
        return int(m.group(1)) if m else None

    def jobs(self):
        """`jobctl list --json`, parsed."""
        return json.loads(self("list", "--json").stdout or b"[]")

    def check_all(self, n, state="Completed"):
        """Raises Failed unless the table holds `n` jobs, all in `state`."""
        jobs = self.jobs()
        bad = [j for j in jobs if j.get("state") != state]
        if len(jobs) != n or bad:
            example = bad[0] if bad else {}
            raise Failed(
                f"expected {n} {state} jobs, the table has {len(jobs)}"
                + (
                    f", {len(bad)} not {state} (e.g. job {example.get('id')}: "
                    f"{example.get('state')} {example.get('reason') or ''})"
                    if bad
                    else ""
                )
            )

    def vm_hwm_mib(self):
        """The daemon's peak resident set (VmHWM) in MiB, or None."""
        return self._status_mib("VmHWM:")

    def vm_rss_mib(self):
        """The daemon's resident set now (VmRSS) in MiB, or None."""
        return self._status_mib("VmRSS:")

    def _status_mib(self, field):
        if not self.pid:
            return None
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None
