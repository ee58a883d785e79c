"""The queueing peers: task-spooler and pueue, each in a private instance.

Both run a server of their own (own socket, own temp dir), started before
the clock and ended by pid (pueue) or `tsp -K` afterwards.
"""

import json
import os
import subprocess
import tempfile
import time

from . import proc
from .proc import Failed, run, timed


class Tsp:
    """task-spooler with its own socket and TMPDIR, 2 slots."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.tsp = ctx.peers.get("tsp")

    def trivial(self, n):
        d = tempfile.mkdtemp(prefix="tsp-", dir=self.ctx.work)
        env = dict(
            os.environ,
            TS_SOCKET=os.path.join(d, "socket"),
            TMPDIR=d,
            TS_SLOTS="2",
            TS_MAXFINISHED=str(n + 10),
            TS_MAXCONN=str(n + 10),
            T=self.tsp,
        )
        try:
            run([self.tsp, "-S", "2"], env=env)  # starts the server
            script = (
                f'for ((i=0;i<{n};i++)); do "$T" true >/dev/null; done\n'
                f'"$T" -w {n - 2} >/dev/null || true; "$T" -w {n - 1} >/dev/null || true\n'
                'while "$T" -l | grep -qE " (running|queued) "; do sleep 0.005; done\n'
            )
            t = timed(script, env=env, timeout=900)
            listing = run([self.tsp, "-l"], env=env).stdout.decode(errors="replace")
            done = [l for l in listing.splitlines()[1:] if " finished " in l]
            ok = [l for l in done if l.split()[3] == "0"]
            if len(ok) != n:
                raise Failed(f"tsp finished {len(ok)} of {n} jobs with status 0")
            return t
        finally:
            run([self.tsp, "-K"], env=env, check=False, timeout=30)


class Pueue:
    """A private pueued (own config, socket and state), used as a context manager."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.pueue = ctx.peers.get("pueue")
        self.pueued = ctx.peers.get("pueued")
        self.dir = tempfile.mkdtemp(prefix="pueue-", dir=ctx.work)
        self.config = os.path.join(self.dir, "pueue.yml")
        self.env = dict(os.environ, PC=self.config)
        self.daemon = None

    def __enter__(self):
        sock = os.path.join(self.dir, "pueue.sock")
        with open(self.config, "w") as f:
            f.write(
                "shared:\n"
                f"  pueue_directory: {self.dir}/data\n"
                f"  runtime_directory: {self.dir}\n"
                "  use_unix_socket: true\n"
                f"  unix_socket_path: {sock}\n"
                "daemon:\n"
                "  callback: null\n"
            )
        log = open(os.path.join(self.dir, "pueued.log"), "wb")
        self.daemon = subprocess.Popen(
            [self.pueued, "-c", self.config],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc.own(self.daemon.pid, "pueued")
        end = time.monotonic() + 20
        while not os.path.exists(sock):
            if self.daemon.poll() is not None or time.monotonic() > end:
                proc.release(self.daemon.pid)
                with open(os.path.join(self.dir, "pueued.log"), "rb") as f:
                    raise Failed("pueued did not start: " + proc.tail(f.read()))
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        if self.daemon:
            proc.release(self.daemon.pid)
        return False

    def cmd(self, *args, timeout=600):
        """Runs `pueue -c CONFIG ARGS`."""
        return run([self.pueue, "-c", self.config, *args], env=self.env, timeout=timeout)

    def tasks(self):
        """The task table from `pueue status --json`."""
        return json.loads(self.cmd("status", "--json").stdout)["tasks"]

    def check_count(self, n, done=False):
        """Raises Failed unless there are n tasks (all done with success if `done`)."""
        tasks = self.tasks()
        if len(tasks) != n:
            raise Failed(f"pueue holds {len(tasks)} tasks, expected {n}")
        if done:
            good = [t for t in tasks.values() if "Success" in json.dumps(t.get("status"))]
            if len(good) != n:
                raise Failed(f"pueue: {len(good)} of {n} tasks done with success")

    def trivial(self, n):
        with self:
            self.cmd("parallel", "2")
            script = (
                f'for ((i=0;i<{n};i++)); do "$P" -c "$PC" add -- true >/dev/null; done\n'
                '"$P" -c "$PC" wait >/dev/null\n'
            )
            t = timed(script, env=dict(self.env, P=self.pueue), timeout=1800)
            self.check_count(n, done=True)
            return t
