"""Comparison 3: the library crates' own criterion benches.

Each crate's benches (`cargo bench -p CRATE --bench '*'`) measure a job
against a raw baseline in the same run; by convention the baseline's
function name starts with `raw`. This module runs them, reads criterion's
`new/estimates.json` and `new/benchmark.json` written by this run, and turns
every non-raw function into a row with its ratio to the raw function of its
group that it most resembles (sharing the most name words, such as the
"5" of `thread_jobs_throttle_5` and `raw_spawn_join_5_at_a_time`).
"""

import glob
import json
import os
import re
import time

from .model import FAILED, NOT_AVAILABLE, OK, Comparison
from .proc import Failed, run

# (crate, what its benches compare, criterion filter for --quick or None)
CRATES = [
    ("jobs-thread", "ThreadJob vs raw thread spawn", None),
    ("jobs-process", "BackgroundJob vs raw Command spawn", "^true/"),
    ("jobs-core", "the session's own overhead vs raw tokio tasks", "^10k_jobs/"),
]


def has_bench(root, crate):
    """True if the crate has a criterion bench file."""
    for f in glob.glob(os.path.join(root, crate, "benches", "*.rs")):
        with open(f, errors="replace") as fh:
            if "criterion_main!" in fh.read():
                return True
    return False


def written(target):
    """Criterion's result files and when each was last written."""
    pattern = os.path.join(target, "criterion", "**", "new", "benchmark.json")
    out = {}
    for bj in glob.glob(pattern, recursive=True):
        try:
            out[bj] = os.path.getmtime(bj)
        except OSError:
            pass
    return out


def collect(target, before):
    """Criterion results written since `before` (a `written` of then):
    list of dicts. (A time would also catch the previous crate's last
    results when this crate's bench needs no build.)"""
    out = []
    for bj, mtime in written(target).items():
        if before.get(bj) == mtime:
            continue
        ej = os.path.join(os.path.dirname(bj), "estimates.json")
        try:
            with open(bj) as f:
                b = json.load(f)
            with open(ej) as f:
                e = json.load(f)
        except (OSError, ValueError):
            continue
        med = e.get("median") or e.get("mean")
        ci = med.get("confidence_interval", {})
        per = 1
        unit_note = None
        tp = b.get("throughput") or {}
        if "Elements" in tp and tp["Elements"]:
            per = tp["Elements"]
            unit_note = f"per element ({per:,} per iteration)"
        elif "Bytes" in tp and tp["Bytes"]:
            unit_note = f"per iteration of {tp['Bytes'] / 2**20:.0f} MiB"
        out.append(
            {
                "group": b.get("group_id"),
                "function": b.get("function_id") or b.get("title"),
                "median_ns": med["point_estimate"] / per,
                "low_ns": ci.get("lower_bound", med["point_estimate"]) / per,
                "high_ns": ci.get("upper_bound", med["point_estimate"]) / per,
                "note": unit_note,
            }
        )
    return out


def words(name):
    return set(re.split(r"[_\W]+", name or "")) - {"", "raw"}


def pick_baseline(fn, raws):
    """The raw function sharing the most name words with `fn`."""
    return max(raws, key=lambda r: len(words(r["function"]) & words(fn["function"])))


def library(ctx):
    """Comparison 3."""
    c = Comparison(
        "library",
        "library: jobs vs raw spawns (criterion, per job)",
        "each crate's criterion bench; ratio to the raw_* function of the same group",
    )
    ctx.log(c.title)
    args = (
        ["--warm-up-time", "0.5", "--measurement-time", "1", "--quick", "--noplot"]
        if ctx.quick
        else ["--warm-up-time", "1", "--measurement-time", "3", "--noplot"]
    )
    c.notes.append("cargo bench -p CRATE --bench '*' -- " + " ".join(args))
    for crate, what, quick_filter in CRATES:
        if not has_bench(ctx.root, crate):
            c.row(f"{crate}: {what}").skip(NOT_AVAILABLE, f"{crate} has no criterion bench yet")
            ctx.log(f"  {crate}: no criterion bench")
            continue
        try:
            t0 = time.time()
            run(["cargo", "bench", "--quiet", "-p", crate, "--bench", "*", "--no-run"], timeout=1800)
            ctx.builds[f"{crate} benches"] = round(time.time() - t0, 1)
            ctx.log(f"  {crate}: bench built in {time.time() - t0:.0f} s")
            before = written(ctx.target)
            run(
                ["cargo", "bench", "--quiet", "-p", crate, "--bench", "*", "--", *args]
                + ([quick_filter] if ctx.quick and quick_filter else []),
                timeout=900 if not ctx.quick else 300,
            )
        except Failed as e:
            c.row(f"{crate}: {what}").skip(FAILED, e)
            ctx.log(f"  {crate}: {e}")
            continue
        results = collect(ctx.target, before)
        if not results:
            c.row(f"{crate}: {what}").skip(FAILED, "the bench wrote no criterion estimates")
            continue
        add_rows(c, crate, results)
        ctx.log(f"  {crate}: {len(results)} functions")
    return c


def add_rows(c, crate, results):
    groups = {}
    for r in results:
        groups.setdefault(r["group"], []).append(r)
    for group in sorted(groups):
        fns = sorted(groups[group], key=lambda r: (not r["function"].startswith("raw"), r["function"]))
        raws = [r for r in fns if r["function"].startswith("raw")]
        for r in fns:
            row = c.row(f"{crate} {group}/{r['function']}", unit="ns", note=r["note"])
            row.status = OK
            row.fixed = (r["median_ns"], r["low_ns"], r["high_ns"])
            if r["function"].startswith("raw"):
                row.baseline = True
                row.ratio, row.ratio_to = 1.0, row.tool
            elif raws:
                b = pick_baseline(r, raws)
                row.ratio = r["median_ns"] / b["median_ns"] if b["median_ns"] else None
                row.ratio_to = f"{crate} {group}/{b['function']}"
