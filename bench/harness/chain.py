"""Comparison 6: a chain of jobs, each waiting for the previous one.

jobctl: N `jobctl start -q --after PREV -c 'echo I >> FILE'` from a bash
loop (each returns at once; the daemon starts a job when the previous one
completed), then one `jobctl wait` of the last. The baseline is what a user
does without dependencies: a bash loop of `jobctl run -c 'echo I >> FILE'`,
each waiting for its job before the next starts. Both write the same file;
the chain's must read 1..N in order, or the row fails.
"""

import os

from .model import Comparison
from .proc import Failed, timed
from .spawn import repeat


def chain(ctx):
    """Comparison 6."""
    n = ctx.n_chain
    c = Comparison(
        "chain",
        f"a chain of {n} jobs, each after the previous",
        f"{n} jobs appending their index to one file, strictly one after another; "
        "figures are wall-clock time per job",
    )
    ctx.log(c.title)
    base = c.row("bash loop of `jobctl run` (baseline)", per=n)
    c.set_baseline(base)
    row = c.row("jobctl start --after PREV, then wait", per=n)
    if not ctx.jobctl:
        base.skip(ctx.jobctl_status, ctx.jobctl_reason)
        row.skip(ctx.jobctl_status, ctx.jobctl_reason)
        return c
    repeat(ctx, base, lambda: run_loop(ctx, n), warmup=True)
    repeat(ctx, row, lambda: after_chain(ctx, n), warmup=True)
    c.notes.append(
        "chain: `jobctl start -q --after $prev -c 'echo $i >> FILE'` per job from bash, "
        "then `jobctl wait` of the last; baseline: `jobctl run -c 'echo $i >> FILE'` per job"
    )
    return c


def check_order(path, n):
    with open(path) as f:
        got = f.read()
    if got != "".join(f"{i}\n" for i in range(1, n + 1)):
        raise Failed(f"the chain's file is not 1..{n} in order: {got[:80]!r}...")


def run_loop(ctx, n):
    with ctx.jobctl.session("chain-run") as s:
        out = os.path.join(s.home, "out")
        script = (
            f'for ((i=1;i<={n};i++)); do "$J" run -c "echo $i >> {out}" >/dev/null; done\n'
        )
        t = timed(script, env=dict(s.env, J=s.binary), timeout=900)
        check_order(out, n)
    return t


def after_chain(ctx, n):
    with ctx.jobctl.session("chain-after") as s:
        out = os.path.join(s.home, "out")
        script = (
            f'prev=$("$J" start -q -c "echo 1 >> {out}")\n'
            f'for ((i=2;i<={n};i++)); do prev=$("$J" start -q --after $prev -c "echo $i >> {out}"); done\n'
            '"$J" wait $prev >/dev/null\n'
        )
        t = timed(script, env=dict(s.env, J=s.binary), timeout=900)
        check_order(out, n)
        s.check_all(n)
    return t
