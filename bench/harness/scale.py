"""Comparisons 5d and 5e: remote fan-out at operator scale (full run only).

5d. `true` on 200 "hosts" (aliases of one loopback sshd, see sshd.py), 64
    connections at a time: jobctl (one remote job, 200 children, throttle
    64) against pdsh -f 64 and parallel-ssh -p 64; wall-clock seconds. The
    baseline is the faster of the two peers in this run.
5e. The client-side CPU of the same repetitions (user + system seconds):
    for pdsh and parallel-ssh their own and their ssh children's (the
    rusage of the waited process tree, from wait4); for jobctl the client
    commands' (the same way) plus the daemon's CPU for the job (utime +
    stime + its reaped children's, from /proc/PID/stat before and after).
    The sshd side is the same server for every tool and is not counted
    (its CPU is in the wall row's note: it shares the cores).
    Also the daemon's peak RSS (VmHWM) after each repetition.

Targets (from the contract): jobctl at most 0.5x the faster peer's wall
time and 0.25x its client CPU, the daemon's peak RSS under 150 MiB.
"""

import os
import statistics
import subprocess
import tempfile
import threading
import time

from .model import FAILED, OK, SKIPPED, Comparison
from .proc import Failed, short, tail
from .remote import jobctl_remote_reason
from .sshd import LoopbackSshd

HOSTS = 200
FAN = 64
TICK = os.sysconf("SC_CLK_TCK")


def run_cpu(cmd, env=None, timeout=600):
    """Runs `cmd` (a list, or a bash script as a string), output discarded.

    Returns (wall seconds, CPU seconds): user + system time of the process
    and of every descendant it waited for, as wait4 reports them."""
    if isinstance(cmd, str):
        cmd = ["bash", "-c", "set -e -o pipefail\n" + cmd]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        except OSError as e:
            raise Failed(f"{short(cmd)}: {e}") from e
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if wall >= timeout:
            raise Failed(f"timed out after {timeout:.0f} s: {short(cmd)}")
        if p.returncode != 0:
            err.seek(0)
            raise Failed(f"exit {p.returncode}: {short(cmd)}: {tail(err.read())}")
    return wall, usage.ru_utime + usage.ru_stime


def proc_cpu(pid):
    """CPU seconds of a process and its reaped children, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime..cstime are 14..17.
    return sum(int(x) for x in fields[11:15]) / TICK


class Tool:
    """Three rows of one tool: wall time, client CPU, and (jobctl) daemon RSS."""

    def __init__(self, name, wall, cpu, rss=None):
        self.name = name
        self.wall = wall.row(name)
        self.cpu = cpu.row(name + ": client CPU")
        self.rss = cpu.row(name + ": daemon peak RSS (VmHWM)", unit="MiB") if rss else None

    def rows(self):
        return [r for r in (self.wall, self.cpu, self.rss) if r]

    def skip(self, status, why):
        for r in self.rows():
            r.skip(status, why)

    def measure(self, ctx, once, server):
        """Runs `once` (returning (wall, cpu, rss or None)) ctx.reps times, after a warm-up.

        `server` is the sshd's pid: its CPU (it reaps the per-connection
        processes) during the repetitions goes into the wall row's note, as
        the same 2 cores serve both sides."""
        t0 = time.monotonic()
        sshd = []
        try:
            once()
            for _ in range(ctx.reps):
                before = proc_cpu(server)
                wall, cpu, rss = once()
                sshd.append(proc_cpu(server) - before)
                self.wall.samples.append(wall)
                self.cpu.samples.append(cpu)
                if self.rss is not None:
                    self.rss.samples.append(rss)
                if len(self.wall.samples) >= 2 and time.monotonic() - t0 > ctx.row_budget:
                    break
        except OSError as e:
            self.skip(FAILED, f"cannot read /proc: {e}")
        except Failed as e:
            for r in self.rows():
                r.samples.clear()
            self.skip(FAILED, e)
        if self.wall.status == OK and sshd:
            self.wall.note = f"sshd side: {statistics.median(sshd):.2f} s CPU"
        if self.wall.status == OK:
            ctx.log(
                f"  {self.name}: wall " + " ".join(f"{s:.2f}" for s in self.wall.samples)
                + " s; CPU " + " ".join(f"{s:.2f}" for s in self.cpu.samples) + " s"
                + ("; RSS " + " ".join(f"{s:.0f}" for s in self.rss.samples) + " MiB" if self.rss else "")
                + "; sshd CPU " + " ".join(f"{s:.2f}" for s in sshd) + " s"
            )
        else:
            ctx.log(f"  {self.name}: {self.wall.status}: {self.wall.reason}")


def remote_scale(ctx):
    """Comparisons 5d and 5e (two Comparison objects)."""
    wall = Comparison(
        "remote_scale",
        f"remote: `true` on {HOSTS} hosts, {FAN} at a time",
        f"{HOSTS} ssh aliases of one loopback sshd; wall-clock seconds for the whole fan-out; "
        "baseline: the faster peer",
    )
    cpu = Comparison(
        "remote_scale_cpu",
        f"remote: client CPU for `true` on {HOSTS} hosts, {FAN} at a time",
        "user + system seconds on the client side (ssh children included; jobctl: client + "
        "daemon); the daemon's peak RSS in MiB; baseline: the faster peer's CPU",
    )
    for c in (wall, cpu):
        c.notes.append(
            "targets: jobctl at most 0.5x the faster peer's wall time, at most 0.25x its "
            "client CPU, daemon peak RSS under 150 MiB"
        )
    ctx.log(wall.title)
    pdsh = Tool(f"pdsh -f {FAN}", wall, cpu)
    pssh = Tool(f"parallel-ssh -p {FAN}", wall, cpu)
    jc = Tool(f"jobctl start --host ({HOSTS}) --throttle {FAN} + wait", wall, cpu, rss=True)
    missing = [t for t in ("sshd", "ssh") if not ctx.peers.get(t)]
    if missing:
        for t in (pdsh, pssh, jc):
            t.skip(SKIPPED, ctx.peers.why(missing[0]))
        return [wall, cpu]
    try:
        with LoopbackSshd(ctx, HOSTS) as sshd:
            for c in (wall, cpu):
                c.notes.append(sshd.kex_note)
            measure_peers(ctx, sshd, pdsh, pssh)
            measure_jobctl(ctx, sshd, jc)
    except Failed as e:
        for t in (pdsh, pssh, jc):
            if not t.wall.samples and t.wall.status == OK:
                t.skip(FAILED, f"loopback sshd: {e}")
    peers = [t for t in (pdsh, pssh) if t.wall.summary()]
    if peers:
        faster = min(peers, key=lambda t: t.wall.summary()[0])
        wall.set_baseline(faster.wall)
        cpu.set_baseline(faster.cpu)
    return [wall, cpu]


def measure_peers(ctx, sshd, pdsh, pssh):
    hosts, cfg = sshd.hosts, sshd.config
    path = ctx.peers.get("pdsh")
    if path:
        env = dict(os.environ, PDSH_RCMD_TYPE="ssh", PDSH_SSH_ARGS=f"-F {cfg} -x %h")
        script = (
            f"out=$({path} -f {FAN} -w {','.join(hosts)} true 2>&1); "
            '[ -z "$out" ] || { echo "$out" >&2; exit 1; }'
        )
        pdsh.measure(ctx, lambda: run_cpu(script, env=env) + (None,), sshd.pid)
    else:
        pdsh.skip(SKIPPED, ctx.peers.why("pdsh"))
    path = ctx.peers.get("parallel-ssh")
    if path:
        cmd = [path, "-p", str(FAN), "-x", f"-F {cfg}", "-H", " ".join(hosts), "true"]
        pssh.measure(ctx, lambda: run_cpu(cmd) + (None,), sshd.pid)
    else:
        pssh.skip(SKIPPED, ctx.peers.why("parallel-ssh"))


def measure_jobctl(ctx, sshd, jc):
    env = dict(os.environ, HOME=sshd.home)
    why = jobctl_remote_reason(ctx, env)
    if why:
        jc.skip(*why)
        ctx.log(f"  jobctl: {why[1]}")
        return

    def once():
        with ctx.jobctl.session("scale", env) as s:
            if not s.pid:
                raise Failed("no daemon pid from `jobctl daemon status`")
            script = (
                f'"$J" start -q --throttle {FAN} --host {",".join(sshd.hosts)} -c true >/dev/null\n'
                '"$J" wait >/dev/null\n'
            )
            before = proc_cpu(s.pid)
            t, client = run_cpu(script, env=dict(s.env, J=s.binary))
            daemon = proc_cpu(s.pid) - before
            rss = s.vm_hwm_mib()
            s.check_all(1)
            return t, client + daemon, rss

    jc.measure(ctx, once, sshd.pid)
