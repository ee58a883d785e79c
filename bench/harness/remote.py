"""Comparison 5: remote commands through a loopback sshd.

5a. `true` on 50 "hosts" (aliases of one loopback sshd), 32 connections at
    a time: jobctl (one remote job with 50 child jobs), pdsh -f 32,
    parallel-ssh -p 32, against plain `ssh` started by `xargs -P32`.
5b. `true` 200 times in a row on one host: jobctl (start + wait per
    command), against plain `ssh` per command and `ssh` over one
    ControlMaster connection (connection reuse).
5c. (full run only) 1,000 items of `true` spread over 4 hosts, 4 at a time
    per host: `jobctl start --each - --host ... --slots 4` against GNU
    parallel `-S 4/HOST,...` with the same hosts and slots.
"""

import os

from .model import FAILED, NOT_AVAILABLE, SKIPPED, Comparison
from .proc import Failed, run, timed
from .spawn import repeat
from .sshd import LoopbackSshd


def remote(ctx):
    """Comparisons 5a and 5b (two Comparison objects)."""
    n = ctx.n_hosts
    k = ctx.n_seq
    fan = Comparison(
        "remote_fanout",
        f"remote: `true` on {n} hosts, 32 at a time",
        f"{n} ssh aliases of one loopback sshd; wall-clock seconds for the whole fan-out",
    )
    seq = Comparison(
        "remote_sequential",
        f"remote: 1 host x {k} sequential `true`",
        "each command waits for the previous one; figures per command",
    )
    ctx.log(fan.title)
    missing = [t for t in ("sshd", "ssh") if not ctx.peers.get(t)]
    if missing:
        for c in (fan, seq):
            c.row("all tools").skip(SKIPPED, ctx.peers.why(missing[0]))
        return [fan, seq]
    try:
        with LoopbackSshd(ctx, n) as sshd:
            for c in (fan, seq):
                if sshd.masked:
                    c.notes.append(sshd.masked)
                c.notes.append(sshd.kex_note)
            fanout(ctx, fan, sshd)
            ctx.log(seq.title)
            sequential(ctx, seq, sshd)
    except Failed as e:
        for c in (fan, seq):
            if not c.rows:
                c.row("all tools").skip(FAILED, f"loopback sshd: {e}")
    return [fan, seq]


def jobctl_remote_reason(ctx, env):
    """None if this jobctl has a remote executor, else (status, why not)."""
    if not ctx.jobctl:
        return ctx.jobctl_status, ctx.jobctl_reason
    try:
        with ctx.jobctl.session("probe", env) as s:
            out = s("plugins", check=False)
            text = (out.stdout + out.stderr).decode(errors="replace")
            if out.returncode == 0 and "remote" in text.lower():
                return None
            return NOT_AVAILABLE, "this jobctl has no remote executor (`jobctl plugins`: " + " ".join(
                text.split()
            )[:160] + ")"
    except Failed as e:
        return FAILED, f"jobctl plugins failed: {e}"


def fanout(ctx, c, sshd):
    hosts = sshd.hosts
    cfg = sshd.config
    base = c.row(f"ssh x {len(hosts)} via xargs -P32 (baseline)")
    c.set_baseline(base)
    hostlines = "\\n".join(hosts)
    repeat(
        ctx,
        base,
        lambda: timed(f"printf '{hostlines}\\n' | xargs -P32 -I{{}} ssh -F {cfg} {{}} true"),
        warmup=True,
    )
    row = c.row("pdsh -f 32")
    pdsh = ctx.peers.get("pdsh")
    if pdsh:
        env = dict(os.environ, PDSH_RCMD_TYPE="ssh", PDSH_SSH_ARGS=f"-F {cfg} -x %h")
        script = f"out=$({pdsh} -f 32 -w {','.join(hosts)} true 2>&1); [ -z \"$out\" ] || {{ echo \"$out\" >&2; exit 1; }}"
        repeat(ctx, row, lambda: timed(script, env=env))
    else:
        row.skip(SKIPPED, ctx.peers.why("pdsh"))
    row = c.row("parallel-ssh -p 32")
    pssh = ctx.peers.get("parallel-ssh")
    if pssh:
        cmd = [pssh, "-p", "32", "-x", f"-F {cfg}", "-H", " ".join(hosts), "true"]
        repeat(ctx, row, lambda: timed(cmd))
    else:
        row.skip(SKIPPED, ctx.peers.why("parallel-ssh"))
    row = c.row(f"jobctl start --host ({len(hosts)}) + wait")
    env = dict(os.environ, HOME=sshd.home)
    why = jobctl_remote_reason(ctx, env)
    if why:
        row.skip(*why)
        ctx.log(f"  jobctl: {why[1]}")
        return

    def once():
        with ctx.jobctl.session("fanout", env) as s:
            script = (
                f'"$J" start -q --throttle 32 --host {",".join(hosts)} -c true >/dev/null\n'
                '"$J" wait >/dev/null\n'
            )
            t = timed(script, env=dict(s.env, J=s.binary))
            s.check_all(1)
            return t

    repeat(ctx, row, once)


def sequential(ctx, c, sshd):
    k = ctx.n_seq
    cfg = sshd.config
    host = sshd.hosts[0]
    base = c.row("ssh per command (baseline)", per=k)
    c.set_baseline(base)
    repeat(
        ctx,
        base,
        lambda: timed(f"for ((i=0;i<{k};i++)); do ssh -F {cfg} {host} true; done"),
        reps=ctx.slow_reps,
    )
    row = c.row("ssh over one ControlMaster connection", per=k)
    cm = os.path.join(sshd.dir, "cm-%C")
    opts = f"-F {cfg} -o ControlMaster=auto -o ControlPath={cm} -o ControlPersist=30"

    def master_once():
        try:
            return timed(f"for ((i=0;i<{k};i++)); do ssh {opts} {host} true; done")
        finally:
            run(f"ssh {opts} -O exit {host}", check=False, timeout=30)

    repeat(ctx, row, master_once, reps=ctx.slow_reps)
    row = c.row("jobctl start --host + wait, per command", per=k)
    env = dict(os.environ, HOME=sshd.home)
    why = jobctl_remote_reason(ctx, env)
    if why:
        row.skip(*why)
        return

    def once():
        with ctx.jobctl.session("sequential", env) as s:
            script = (
                f"for ((i=0;i<{k};i++)); do "
                f'id=$("$J" start -q --host {host} -c true); "$J" wait "$id" >/dev/null; done\n'
            )
            t = timed(script, env=dict(s.env, J=s.binary), timeout=1200)
            s.check_all(k)
            return t

    repeat(ctx, row, once, reps=ctx.slow_reps)


def spread(ctx):
    """Comparison 5c (full run only): a batch's items spread over hosts."""
    n, hosts, slots = 1000, 4, 4
    c = Comparison(
        "remote_spread",
        f"remote: {n:,} items of `true` over {hosts} hosts, {slots} at a time per host",
        f"{n} items, each run once on one of {hosts} ssh aliases of one loopback sshd, "
        f"at most {slots} at once per host; figures are wall-clock time per item",
    )
    ctx.log(c.title)
    base = c.row(f"parallel -S {slots}/HOST x {hosts} (baseline)", per=n)
    row = c.row(f"jobctl start --each - --host ({hosts}) --slots {slots}, then wait", per=n)
    if ctx.quick:
        for r in (base, row):
            r.skip(SKIPPED, "full run only")
        return c
    missing = [t for t in ("sshd", "ssh", "parallel") if not ctx.peers.get(t)]
    if missing:
        for r in (base, row):
            r.skip(SKIPPED, ctx.peers.why(missing[0]))
        return c
    try:
        with LoopbackSshd(ctx, hosts, name="sshd-spread") as sshd:
            if sshd.masked:
                c.notes.append(sshd.masked)
            c.notes.append(sshd.kex_note)
            spread_rows(ctx, c, sshd, base, row, n, slots)
    except Failed as e:
        for r in (base, row):
            if not r.samples:
                r.skip(FAILED, f"loopback sshd: {e}")
    return c


def spread_rows(ctx, c, sshd, base, row, n, slots):
    c.set_baseline(base)
    logins = ",".join(f"{slots}/{h}" for h in sshd.hosts)
    gp = ctx.peers.get("parallel")
    repeat(
        ctx,
        base,
        lambda: timed(
            f"seq {n} | {gp} --will-cite -S {logins} --ssh 'ssh -F {sshd.config}' true",
            timeout=900,
        ),
    )
    env = dict(os.environ, HOME=sshd.home)
    why = jobctl_remote_reason(ctx, env)
    if why:
        row.skip(*why)
        return
    hosts = ",".join(sshd.hosts)

    def once():
        with ctx.jobctl.session("spread", env) as s:
            script = (
                f'seq {n} | "$J" start -q --each - --host {hosts} --slots {slots} -- true >/dev/null\n'
                '"$J" wait >/dev/null\n'
            )
            t = timed(script, env=dict(s.env, J=s.binary), timeout=900)
            jobs = s.jobs()
            if len(jobs) != 1 or jobs[0].get("state") != "Completed" or len(jobs[0].get("children", [])) != n:
                j = jobs[0] if jobs else {}
                raise Failed(
                    f"expected one Completed batch of {n} items, got {len(jobs)} row(s): "
                    f"{j.get('state')} {j.get('reason') or ''}"
                )
            return t

    repeat(ctx, row, once)
    c.notes.append(
        f"GNU parallel: `seq {n} | parallel -S {slots}/a1,...,{slots}/a4 --ssh 'ssh -F CFG' true` "
        "(a new ssh connection per item); jobctl: `seq N | jobctl start -q --each - --host "
        f"a1,...,a4 --slots {slots} -- true; jobctl wait` (a kept connection per slot); "
        "the daemon starts before the clock"
    )
