"""Comparisons 1 and 2: many trivial commands, and start cost at scale.

1. N x `true`, 2 at a time, through each tool's ordinary command line (one
   client invocation per job where the tool works that way), against a raw
   fork/exec loop in this process as the floor.
2. The start of the first jobs against the start of the last ones in a
   session holding N jobs (jobctl and pueue): flat is the goal.
"""

import os
import time

from .model import FAILED, SKIPPED, Comparison
from .proc import Failed, run, timed
from .queues import Pueue, Tsp


def raw_spawn(n, width):
    """Spawns /bin/true n times, `width` at a time; returns seconds."""
    env = dict(os.environ)
    pids = set()
    started = 0
    t0 = time.perf_counter()
    while started < n or pids:
        while len(pids) < width and started < n:
            pids.add(os.posix_spawn("/bin/true", ["true"], env))
            started += 1
        pid, status = os.wait()
        if pid in pids:
            pids.discard(pid)
            if os.waitstatus_to_exitcode(status) != 0:
                raise Failed("/bin/true failed")
    return time.perf_counter() - t0


def repeat(ctx, row, once, reps=None, warmup=False):
    """Runs `once` (returning seconds) reps times into row.samples; failures mark the row.

    A row stops early, after at least 2 repetitions, once it has used its share
    of the run's time (ctx.row_budget seconds), so a slow tool cannot blow the
    run's time limit; the table shows how many repetitions each row got.
    """
    t0 = time.monotonic()
    try:
        if warmup:
            once()
        for _ in range(reps or ctx.reps):
            row.samples.append(once())
            if len(row.samples) >= 2 and time.monotonic() - t0 > ctx.row_budget:
                break
    except Failed as e:
        row.samples.clear()
        row.skip(FAILED, e)
    ctx.log(f"  {row.tool}: {fmt_samples(row)}")


def fmt_samples(row):
    if row.status != "ok":
        return f"{row.status}: {row.reason}"
    return " ".join(f"{s / row.per * 1e3:.3g}" for s in row.samples) + " ms" + (
        "/job" if row.per != 1 else ""
    )


def trivial(ctx):
    """Comparison 1."""
    n = ctx.n_trivial
    c = Comparison(
        "trivial",
        f"{n:,} x `true`, 2 at a time",
        f"{n} runs of `true`, at most 2 at once; figures are wall-clock time per job",
    )
    ctx.log(c.title)
    floor, _, _ = process_rows(ctx, c, n)
    c.set_baseline(floor)

    row = c.row("tsp, 2 slots", per=n)
    if ctx.peers.get("tsp"):
        repeat(ctx, row, lambda: Tsp(ctx).trivial(n))
    else:
        row.skip(SKIPPED, ctx.peers.why("tsp"))

    # pueue takes ~0.17 s a job here (its scheduler ticks): 200 jobs show
    # its per-job figure without spending minutes of the run's budget.
    n_pueue = min(n, 200)
    label = "pueue, parallel 2" + (f" ({n_pueue} jobs)" if n_pueue < n else "")
    row = c.row(label, per=n_pueue)
    if ctx.peers.get("pueue"):
        repeat(ctx, row, lambda: Pueue(ctx).trivial(n_pueue), reps=ctx.slow_reps)
    else:
        row.skip(SKIPPED, ctx.peers.why("pueue"))

    row = c.row("jobctl start + wait", per=n)
    if ctx.jobctl:
        repeat(ctx, row, lambda: jobctl_trivial(ctx, n))
    else:
        row.skip(ctx.jobctl_status, ctx.jobctl_reason)
    c.notes.append(
        "CLI tools: one client invocation per job from a bash loop "
        "(`tsp true`, `pueue add -- true`, `jobctl start -q --throttle 2 -- true`), "
        "then one wait; daemons/servers start before the clock and each repetition "
        "has a fresh one."
    )
    return c


def process_rows(ctx, c, n):
    """Adds and measures the rows of N x `true` 2 at a time without a job
    model: a raw fork/exec loop (the floor), xargs -P2 and GNU parallel -j2.
    Returns the three rows."""
    floor = c.row("raw fork/exec (floor)", per=n)
    repeat(ctx, floor, lambda: raw_spawn(n, 2), warmup=True)
    xargs = c.row("xargs -P2", per=n)
    repeat(ctx, xargs, lambda: timed(f"seq {n} | xargs -P2 -n1 true"), warmup=True)
    par_row = c.row("GNU parallel -j2", per=n)
    par = ctx.peers.get("parallel")
    if par:
        repeat(ctx, par_row, lambda: timed(f"seq {n} | {par} --will-cite -j2 -N0 true"))
    else:
        par_row.skip(SKIPPED, ctx.peers.why("parallel"))
    return floor, xargs, par_row


def jobctl_trivial(ctx, n):
    with ctx.jobctl.session("trivial") as s:
        script = (
            f'for ((i=0;i<{n};i++)); do "$J" start -q --throttle 2 -- true >/dev/null; done\n'
            '"$J" wait >/dev/null\n'
        )
        t = timed(script, env=dict(s.env, J=s.binary), timeout=900)
        s.check_all(n)
    return t


def timed_starts(env, count, cmd):
    """Runs `cmd` count times from bash, timing each; returns the seconds of each."""
    script = (
        f"for ((i=0;i<{count};i++)); do t0=$EPOCHREALTIME; {cmd} >/dev/null; "
        't1=$EPOCHREALTIME; echo "$t0 $t1"; done\n'
    )
    out = run(script, env=dict(env, LC_ALL="C"), timeout=900).stdout.decode()
    return [float(b) - float(a) for a, b in (line.split() for line in out.splitlines())]


def scale(ctx):
    """Comparison 2."""
    n, k = ctx.n_scale, ctx.k_scale
    c = Comparison(
        "scale",
        f"start cost: jobs 1-{k} vs jobs {n - k + 1:,}-{n:,} of one session",
        f"each start timed alone; the session holds {n:,} jobs at the end; "
        "ratio = last / first (flat = 1.0)",
    )
    ctx.log(c.title)
    # pueue rewrites its whole state file on every add, so its fill is
    # quadratic: 10,000 adds take over 15 minutes here. Its figures come
    # from a table of at most 3,000 tasks, which already shows the slope.
    n_pueue = min(n, 3000)
    specs = [("jobctl", n, ctx.jobctl is not None, ctx.jobctl_reason, jobctl_scale)]
    specs.append(("pueue", n_pueue, ctx.peers.get("pueue"), ctx.peers.why("pueue"), pueue_scale))
    for tool, n, have, why, fn in specs:
        first = c.row(f"{tool}: start of jobs 1-{k}")
        last = c.row(f"{tool}: start of jobs {n - k + 1:,}-{n:,}")
        if not have:
            status = ctx.jobctl_status if tool == "jobctl" else SKIPPED
            first.skip(status, why)
            last.skip(status, why)
            continue
        try:
            a, b, note, extras = fn(ctx, n, k)
            for name, unit, samples in extras:
                c.row(name, unit=unit).samples = samples
            first.samples, last.samples = a, b
            first.note = note
            first.ratio, first.ratio_to = 1.0, first.tool
            last.ratio = (last.summary()[0] / first.summary()[0]) if a and b else None
            last.ratio_to = first.tool
        except Failed as e:
            first.skip(FAILED, e)
            last.skip(FAILED, e)
        ctx.log(f"  {first.tool}: {fmt_samples(first)}")
        ctx.log(f"  {last.tool}: {fmt_samples(last)}")
    return c


def jobctl_scale(ctx, n, k):
    with ctx.jobctl.session("scale") as s:
        env = dict(s.env, J=s.binary)
        cmd = '"$J" start -q -- true'
        first = timed_starts(env, k, cmd)
        run(f'for ((i=0;i<{n - 2 * k};i++)); do {cmd} >/dev/null; done; "$J" wait >/dev/null',
            env=env, timeout=1800)
        last = timed_starts(env, k, cmd)
        s("wait", timeout=600)
        s.check_all(n)
        extras = [
            (f"jobctl list --json, {n:,} rows", "s", timed_runs(env, k // 2, '"$J" list --json')),
            (f"jobctl list ID, 1 row of {n:,}", "s", timed_starts(env, k, '"$J" list 1')),
        ]
        hwm = s.vm_hwm_mib()
        rss = s.vm_rss_mib()
        if rss is not None:
            extras.append((f"jobctl daemon RSS holding {n:,} finished jobs", "MiB", [rss]))
        if hwm is not None:
            extras.append(("jobctl daemon peak RSS (VmHWM) over the session", "MiB", [hwm]))
    return first, last, "`jobctl start -q -- true`; the fill waits for its jobs before the last starts", extras


def timed_runs(env, count, cmd):
    """Like timed_starts, at least 2 runs."""
    return timed_starts(env, max(count, 2), cmd)


def pueue_scale(ctx, n, k):
    p = Pueue(ctx)
    with p:
        p.cmd("pause")
        env = dict(p.env, P=p.pueue)
        cmd = '"$P" -c "$PC" add -- true'
        first = timed_starts(env, k, cmd)
        run(f"for ((i=0;i<{n - 2 * k};i++)); do {cmd} >/dev/null; done", env=env, timeout=1800)
        last = timed_starts(env, k, cmd)
        p.check_count(n)
        note = (
            "`pueue add -- true` with the group paused (queued, not run: running them "
            "all would take far longer than the bench)"
        )
        try:
            extras = [(f"pueue status --json, {n:,} tasks", "s",
                       timed_runs(env, k // 2, '"$P" -c "$PC" status --json'))]
        except Failed as e:
            # pueue's client refuses a status message past its size limit.
            extras = []
            note += f"; `pueue status --json` of {n:,} tasks failed: {str(e)[-160:]}"
    return first, last, note, extras
