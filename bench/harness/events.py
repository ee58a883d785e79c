"""Comparison 8: the cost of state-change events to the jobs.

N x `jobctl start -q --throttle 2 -- true` from a bash loop, then one
`jobctl wait`, in a fresh session (the `trivial` comparison's jobctl row),
against the same with `jobctl events --follow --json` attached from before
the first start to the end: the events are stored either way; the follower
adds their delivery. The goal is a rise of at most 10%. Repetitions of the
two alternate, so that a noisy neighbour hits both alike. The follower must
have printed every job's three events (created, running, completed), or the
row fails.
"""

import os
import subprocess
import time

from . import proc
from .model import FAILED, Comparison
from .proc import Failed, timed
from .spawn import fmt_samples


def events(ctx):
    """Comparison 8."""
    n = ctx.n_trivial
    c = Comparison(
        "events",
        f"{n:,} x `jobctl start -- true` with and without `events --follow`",
        f"{n} trivial jobs, 2 at a time, started one `jobctl start` at a time; "
        "figures are wall-clock time per job",
    )
    ctx.log(c.title)
    base = c.row("jobctl start + wait, nobody following (baseline)", per=n)
    c.set_baseline(base)
    row = c.row("the same with `jobctl events --follow --json` attached", per=n)
    if not ctx.jobctl:
        base.skip(ctx.jobctl_status, ctx.jobctl_reason)
        row.skip(ctx.jobctl_status, ctx.jobctl_reason)
        return c
    t0 = time.monotonic()
    try:
        starts(ctx, n, follow=False)  # warm-up
        for _ in range(ctx.reps):
            base.samples.append(starts(ctx, n, follow=False))
            row.samples.append(starts(ctx, n, follow=True))
            if len(row.samples) >= 2 and time.monotonic() - t0 > 2 * ctx.row_budget:
                break
    except Failed as e:
        for r in (base, row):
            r.samples.clear()
            r.skip(FAILED, e)
    ctx.log(f"  {base.tool}: {fmt_samples(base)}")
    ctx.log(f"  {row.tool}: {fmt_samples(row)}")
    c.notes.append(
        "events: `jobctl start -q --throttle 2 -- true` per job from bash, then `jobctl wait`; "
        "the follower (`jobctl events --follow --json > FILE`) starts with the session and "
        "must print 3 events per job; repetitions alternate between the two rows"
    )
    return c


def starts(ctx, n, follow):
    with ctx.jobctl.session("events-follow" if follow else "events-alone") as s:
        follower = None
        out_path = os.path.join(s.home, "events.jsonl")
        if follow:
            out = open(out_path, "wb")
            follower = subprocess.Popen(
                [s.binary, "events", "--follow", "--json"],
                env=s.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
            proc.own(follower.pid, "jobctl events --follow")
        try:
            script = (
                f'for ((i=0;i<{n};i++)); do "$J" start -q --throttle 2 -- true >/dev/null; done\n'
                '"$J" wait >/dev/null\n'
            )
            t = timed(script, env=dict(s.env, J=s.binary), timeout=900)
            s.check_all(n)
            if follower:
                want = 3 * n
                deadline = time.monotonic() + 60
                while count_lines(out_path) < want and time.monotonic() < deadline:
                    time.sleep(0.05)
                got = count_lines(out_path)
                if got != want:
                    raise Failed(f"the follower printed {got} events, not {want}")
        finally:
            if follower:
                proc.release(follower.pid)
                follower.wait()
                out.close()
    return t


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)
