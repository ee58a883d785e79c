"""Comparison 7: one command over many inputs, as one batch job.

7a. N x `true`, 2 at a time: `seq N | jobctl start -q --each - --throttle 2
    -- true` then `jobctl wait`, beside `xargs -P2`, GNU parallel `-j2` and a
    raw fork/exec loop in this process as the floor.
7b. (full run only) 100,000 items of `true` at `--throttle 8`: how long
    `start` takes to return, the daemon's peak resident memory, and how fast
    the last 1,000 children start against the first 1,000 (from their
    `begin` times; flat = 1.0).
"""

import datetime
import json
import time

from .model import FAILED, Comparison
from .proc import Failed, timed
from .spawn import process_rows, repeat


def batch(ctx):
    """Comparisons 7a and (full run) 7b."""
    out = [batch_trivial(ctx)]
    if not ctx.quick:
        out.append(batch_large(ctx))
    return out


def batch_trivial(ctx):
    n = ctx.n_trivial
    c = Comparison(
        "batch",
        f"{n:,} x `true` as one batch, 2 at a time",
        f"{n} runs of `true` over {n} input lines, at most 2 at once; "
        "figures are wall-clock time per item",
    )
    ctx.log(c.title)
    _, xargs, _ = process_rows(ctx, c, n)
    c.set_baseline(xargs)
    row = c.row("jobctl start --each - --throttle 2, then wait", per=n)
    if ctx.jobctl:
        repeat(ctx, row, lambda: jobctl_batch(ctx, n))
    else:
        row.skip(ctx.jobctl_status, ctx.jobctl_reason)
    c.notes.append(
        "batch: `seq N | jobctl start -q --each - --throttle 2 -- true; jobctl wait`; "
        "the daemon starts before the clock; ratios against xargs -P2 (targets: "
        "at most 1.2x xargs, at most 0.3x GNU parallel)"
    )
    return c


def jobctl_batch(ctx, n):
    with ctx.jobctl.session("batch") as s:
        script = f'seq {n} | "$J" start -q --each - --throttle 2 -- true >/dev/null\n"$J" wait >/dev/null\n'
        t = timed(script, env=dict(s.env, J=s.binary), timeout=900)
        check_batch(s, n)
    return t


def check_batch(s, n):
    jobs = s.jobs()
    if len(jobs) != 1 or jobs[0].get("state") != "Completed" or len(jobs[0].get("children", [])) != n:
        j = jobs[0] if jobs else {}
        raise Failed(
            f"expected one Completed batch of {n} children, got {len(jobs)} row(s): "
            f"{j.get('state')} {j.get('reason') or ''} with {len(j.get('children', []))} children"
        )


def begin_seconds(row):
    t = row.get("begin")
    if not t:
        raise Failed(f"child {row.get('id')} has no begin time")
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def batch_large(ctx):
    n, k = 100_000, 1_000
    c = Comparison(
        "batch_large",
        f"{n:,} items of `true` in one batch, 8 at a time",
        "how long `start` takes to return, the daemon's peak memory, and the start "
        f"rate of the last {k:,} children against the first {k:,}",
    )
    ctx.log(c.title)
    start = c.row("jobctl start --each (returns)")
    hwm = c.row("jobctl daemon peak RSS (VmHWM)", unit="MiB")
    first = c.row(f"children 1-{k:,}: seconds from first to last begin")
    last = c.row(f"children {n - k + 1:,}-{n:,}: seconds from first to last begin")
    if not ctx.jobctl:
        for r in (start, hwm, first, last):
            r.skip(ctx.jobctl_status, ctx.jobctl_reason)
        return c
    try:
        with ctx.jobctl.session("batch-large") as s:
            items = f"{ctx.work}/items-{n}"
            with open(items, "w") as f:
                f.write("".join(f"{i}\n" for i in range(1, n + 1)))
            t0 = time.perf_counter()
            s("start", "-q", "--each", items, "--throttle", "8", "--", "true", timeout=600)
            start.samples = [time.perf_counter() - t0]
            s("wait", timeout=3600)
            peak = s.vm_hwm_mib()
            if peak is not None:
                hwm.samples = [peak]
            rows = json.loads(s("list", "--include-children", "--json", timeout=600).stdout)
            kids = sorted((r for r in rows if r.get("parent")), key=lambda r: r["id"])
            if len(kids) != n:
                raise Failed(f"expected {n} children, the table has {len(kids)}")
            a = [begin_seconds(r) for r in kids[:k]]
            b = [begin_seconds(r) for r in kids[-k:]]
            first.samples = [max(a) - min(a)]
            last.samples = [max(b) - min(b)]
            first.ratio, first.ratio_to = 1.0, first.tool
            last.ratio = last.samples[0] / first.samples[0] if first.samples[0] > 0 else None
            last.ratio_to = first.tool
    except Failed as e:
        for r in (start, hwm, first, last):
            if not r.samples:
                r.skip(FAILED, e)
    c.notes.append(
        f"`jobctl start -q --each FILE --throttle 8 -- true` over {n:,} lines, then `jobctl wait`; "
        "targets: start under 2 s, peak RSS under 200 MiB, last/first at most 1.2"
    )
    return c
