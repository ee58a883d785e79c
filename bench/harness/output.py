"""Comparison 4: one job writing a large file of lines, received to /dev/null.

The floor is `cat FILE > /dev/null` (and `cat FILE | cat`, the same bytes
through a pipe). jobctl runs `cat FILE` as a job and `jobctl receive ID
--wait > /dev/null` takes its output; the clock covers start to the end of
receive. Memory: the daemon's peak RSS (VmHWM in /proc/PID/status, a fresh
daemon per repetition) and the receiving client's (`/usr/bin/time -f %M`).
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
        "wall-clock seconds from start to the last byte received; peak RSS in MiB",
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

    job = c.row("jobctl start + receive --wait")
    daemon_rss = c.row("jobctl daemon peak RSS (VmHWM)", unit="MiB")
    client_rss = c.row("jobctl receive client peak RSS", unit="MiB")
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

    if not ctx.jobctl:
        for r in (job, daemon_rss, client_rss):
            r.skip(ctx.jobctl_status, ctx.jobctl_reason)
        return c
    if not time_bin:
        client_rss.skip(SKIPPED, ctx.peers.why("time"))

    def once(check=False):
        with ctx.jobctl.session("output") as s:
            rss = os.path.join(s.home, "client.rss")
            wrap = f'"{time_bin}" -f %M -o "{rss}" ' if time_bin else ""
            sink = "| wc -c" if check else "> /dev/null"
            script = (
                f'id=$("$J" start -q -- cat "{path}")\n'
                f'{wrap}"$J" receive "$id" --wait {sink}\n'
            )
            t0 = time.perf_counter()
            out = run(script, env=dict(s.env, J=s.binary), timeout=1200).stdout
            t = time.perf_counter() - t0
            if check and int(out.split()[-1]) != size:
                raise Failed(f"received {int(out.split()[-1]):,} bytes of {size:,}")
            s.check_all(1)
            hwm = s.vm_hwm_mib()
            if not check:
                if hwm is not None:
                    daemon_rss.samples.append(hwm)
                if time_bin:
                    client_rss.samples.append(read_kib(rss) / 1024)
            return t

    try:
        once(check=True)  # warm-up that also checks every byte arrived
    except Failed as e:
        job.skip(FAILED, e)
        daemon_rss.skip(FAILED, e)
        client_rss.skip(FAILED, e)
        ctx.log(f"  jobctl: {e}")
        return c
    repeat(ctx, job, once, reps=ctx.slow_reps)
    if job.status == "ok":
        med = job.summary()[0]
        job.note = f"{size / med / 1e9:.2f} GB/s"
        if not daemon_rss.samples:
            daemon_rss.skip(FAILED, "the daemon's /proc/PID/status was not readable")
    else:
        daemon_rss.skip(job.status, job.reason)
        client_rss.skip(job.status, job.reason)
    bs = base.summary()
    if bs:
        base.note = f"{size / bs[0] / 1e9:.2f} GB/s"
    return c


def read_kib(path):
    """The %M figure GNU time wrote (KiB)."""
    with open(path) as f:
        return int(f.read().split()[-1])
