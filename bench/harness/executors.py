"""Comparison: the per-job cost of executors outside the daemon's code.

jobs-exec's criterion bench (`cargo bench -p jobs-exec --bench overhead`)
runs the same job (`echo x`: start, wait, receive, remove) through the
built-in BackgroundJob, the C plugin (plugins/c-example, loaded through
the plugin ABI) and the Python executable (plugins/py-example/py-shell,
spoken to in JSON lines), in one run; each row's ratio is to the
built-in executor's median, and the note gives the difference per job.
"""

import time

from .library import collect, written
from .model import FAILED, OK, Comparison
from .proc import Failed, run

CRATE = "jobs-exec"
BASELINE = "builtin_process"


def executors(ctx):
    """The comparison."""
    c = Comparison(
        "executors",
        "executors: a job through a plugin or an executable vs the built-in one",
        "criterion, per job (echo x: start, wait, receive, remove); ratio to BackgroundJob",
    )
    ctx.log(c.title)
    args = (
        ["--warm-up-time", "0.5", "--measurement-time", "2", "--noplot"]
        if ctx.quick
        else ["--warm-up-time", "1", "--measurement-time", "5", "--noplot"]
    )
    c.notes.append(f"cargo bench -p {CRATE} --bench overhead -- " + " ".join(args))
    try:
        t0 = time.time()
        run(["cargo", "bench", "--quiet", "-p", CRATE, "--bench", "overhead", "--no-run"], timeout=1800)
        ctx.builds[f"{CRATE} bench"] = round(time.time() - t0, 1)
        before = written(ctx.target)
        run(["cargo", "bench", "--quiet", "-p", CRATE, "--bench", "overhead", "--", *args], timeout=900)
    except Failed as e:
        c.row(f"{CRATE}: executors per job").skip(FAILED, e)
        return c
    results = [r for r in collect(ctx.target, before) if r["group"] == "echo_job"]
    base = next((r for r in results if r["function"] == BASELINE), None)
    if base is None:
        c.row(f"{CRATE}: executors per job").skip(FAILED, "the bench wrote no estimate for " + BASELINE)
        return c
    names = {
        BASELINE: "BackgroundJob (built-in)",
        "c_plugin": "CShellJob (C plugin)",
        "py_executable": "py-shell (Python executable)",
    }
    order = [BASELINE, "c_plugin", "py_executable"]
    for r in sorted(results, key=lambda r: order.index(r["function"]) if r["function"] in order else 99):
        extra = None
        if r is not base:
            extra = f"{(r['median_ns'] - base['median_ns']) / 1e6:+.2f} ms per job"
        row = c.row(names.get(r["function"], r["function"]), unit="ns", note=extra)
        row.status = OK
        row.fixed = (r["median_ns"], r["low_ns"], r["high_ns"])
        if r is base:
            row.baseline = True
            row.ratio, row.ratio_to = 1.0, row.tool
        else:
            row.ratio = r["median_ns"] / base["median_ns"] if base["median_ns"] else None
            row.ratio_to = names[BASELINE]
    return c
