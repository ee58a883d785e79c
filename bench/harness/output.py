"""Comparison 4: one job writing a large file of lines, received to /dev/null.

The floor is `cat FILE > /dev/null` (and `cat FILE | cat`, the same bytes
through a pipe). jobctl runs `cat FILE` as a job, in two cases: (a) the job
has finished before `jobctl receive ID > /dev/null` starts (its output
buffered by the daemon), the clock covering the receive; (b) `jobctl
receive ID --wait > /dev/null` takes the output while the job writes, the
clock covering start to the end of receive. For each: the daemon's peak
RSS (VmHWM in /proc/PID/status, a fresh daemon per repetition) and the
receiving client's (`/usr/bin/time`), and the CPU time (user+sys) of both
in the timed part, per GiB.
"""

import os
import time

from .model import FAILED, SKIPPED, Comparison
from .proc import Failed, run, timed
from .spawn import repeat


def make_file(path, size):
    """Writes `size` bytes of ~60-byte numbered lines."""
    lines = []
    total = 0
    i = 0
    while total < (1 << 20):
        line = f"line {i:012} the quick brown fox jumps over the lazy dog\n"
        lines.append(line)
        total += len(line)
        i += 1
    block = "".join(lines).encode()
    with open(path, "wb") as f:
        written = 0
        while written < size:
            chunk = block[: size - written]
            f.write(chunk)
            written += len(chunk)


def output(ctx):
    """Comparison 4."""
    size = ctx.out_bytes
    human = f"{size / 2**30:g} GiB" if size >= 2**30 else f"{size // 2**20} MiB"
    c = Comparison(
        "output",
        f"output: one job writing {human} of lines, received to /dev/null",
        "wall-clock seconds to the last byte received; peak RSS in MiB; CPU seconds per GiB",
    )
    ctx.log(c.title)
    path = os.path.join(ctx.work, "lines.txt")
    make_file(path, size)
    time_bin = ctx.peers.get("time")

    base = c.row("cat FILE > /dev/null (floor)")
    c.set_baseline(base)
    repeat(ctx, base, lambda: timed(f"cat {path} > /dev/null"), warmup=True)
    row = c.row("cat FILE | cat > /dev/null")
    repeat(ctx, row, lambda: timed(f"cat {path} | cat > /dev/null"))

    cat_rss = c.row("cat peak RSS", unit="MiB")
    if time_bin:
        try:
            rss = os.path.join(ctx.work, "cat.rss")
            run(f"{time_bin} -f %M -o {rss} cat {path} > /dev/null")
            cat_rss.samples.append(read_kib(rss) / 1024)
        except Failed as e:
            cat_rss.skip(FAILED, e)
    else:
        cat_rss.skip(SKIPPED, ctx.peers.why("time"))
    gib = size / 2**30
    for case, label in CASES:
        measure(ctx, c, case, label, path, size, gib, time_bin)
    bs = base.summary()
    if bs:
        base.note = f"{size / bs[0] / 1e9:.2f} GB/s"
    c.notes.append(
        "(a) finished: `cat FILE` runs as a job and ends before the clock starts, its "
        "output buffered by the daemon (memory, then its store's files); the clock covers "
        "`jobctl receive ID > /dev/null`. (b) live: the clock covers `jobctl start` and "
        "`jobctl receive ID --wait > /dev/null` while the job writes. CPU rows: user+sys "
        "seconds per GiB in the timed part (daemon: /proc/PID/stat, which in (b) includes "
        "its reading of the job's pipe; client: GNU time)."
    )
    return c


# (key, label): the output is all there before the receive, or it is
# received while the job writes.
CASES = [
    ("finished", "(a) job finished, then receive"),
    ("live", "(b) start + receive --wait"),
]


def measure(ctx, c, case, label, path, size, gib, time_bin):
    """The rows of one case: time, and peak RSS and CPU of daemon and client."""
    job = c.row(f"jobctl {label}")
    daemon_rss = c.row(f"jobctl {case}: daemon peak RSS (VmHWM)", unit="MiB")
    client_rss = c.row(f"jobctl {case}: receive client peak RSS", unit="MiB")
    daemon_cpu = c.row(f"jobctl {case}: daemon CPU user+sys per GiB", unit="CPU s")
    client_cpu = c.row(f"jobctl {case}: client CPU user+sys per GiB", unit="CPU s")
    extra = (daemon_rss, client_rss, daemon_cpu, client_cpu)
    if not ctx.jobctl:
        for r in (job, *extra):
            r.skip(ctx.jobctl_status, ctx.jobctl_reason)
        return
    if not time_bin:
        for r in (client_rss, client_cpu):
            r.skip(SKIPPED, ctx.peers.why("time"))

    def once(check=False):
        with ctx.jobctl.session("output") as s:
            stats = os.path.join(s.home, "client.time")
            wrap = f'"{time_bin}" -f "%M %U %S" -o "{stats}" ' if time_bin else ""
            sink = "| wc -c" if check else "> /dev/null"
            env = dict(s.env, J=s.binary)
            if case == "finished":
                jid = run(f'"$J" start -q -- cat "{path}"', env=env).stdout.decode().strip()
                run(f'"$J" wait {jid} > /dev/null', env=env, timeout=1200)
                script = f'{wrap}"$J" receive {jid} {sink}\n'
            else:
                script = (
                    f'id=$("$J" start -q -- cat "{path}")\n'
                    f'{wrap}"$J" receive "$id" --wait {sink}\n'
                )
            cpu0 = cpu_seconds(s.pid)
            t0 = time.perf_counter()
            out = run(script, env=env, timeout=1200).stdout
            t = time.perf_counter() - t0
            cpu1 = cpu_seconds(s.pid)
            if check and int(out.split()[-1]) != size:
                raise Failed(f"received {int(out.split()[-1]):,} bytes of {size:,}")
            s.check_all(1)
            hwm = s.vm_hwm_mib()
            if not check:
                if hwm is not None:
                    daemon_rss.samples.append(hwm)
                if cpu0 is not None and cpu1 is not None:
                    daemon_cpu.samples.append((cpu1 - cpu0) / gib)
                if time_bin:
                    kib, user, sys_ = read_time(stats)
                    client_rss.samples.append(kib / 1024)
                    client_cpu.samples.append((user + sys_) / gib)
            return t

    try:
        once(check=True)  # warm-up that also checks every byte arrived
    except Failed as e:
        for r in (job, *extra):
            r.skip(FAILED, e)
        ctx.log(f"  jobctl {case}: {e}")
        return
    repeat(ctx, job, once, reps=ctx.slow_reps)
    if job.status != "ok":
        for r in extra:
            r.skip(job.status, job.reason)
        return
    job.note = f"{size / job.summary()[0] / 1e9:.2f} GB/s"
    if not daemon_rss.samples:
        daemon_rss.skip(FAILED, "the daemon's /proc/PID/status was not readable")
    if not daemon_cpu.samples:
        daemon_cpu.skip(FAILED, "the daemon's /proc/PID/stat was not readable")
    for r in extra:
        if r.status == "ok":
            ctx.log(f"  {r.tool}: " + " ".join(f"{v:.3g}" for v in r.samples))


def cpu_seconds(pid):
    """User+system CPU seconds the process has used so far, or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def read_time(path):
    """GNU time's `%M %U %S`: (KiB, user seconds, system seconds)."""
    with open(path) as f:
        kib, user, sys_ = f.read().split()[-3:]
    return int(kib), float(user), float(sys_)


def read_kib(path):
    """The %M figure GNU time wrote (KiB)."""
    with open(path) as f:
        return int(f.read().split()[-1])
