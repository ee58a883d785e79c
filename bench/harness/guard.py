"""The quick run as a regression guard: this run's ratios beside the last run's.

Every run writes `bench/results/bench-STAMP.json` with the commit it measured.
`compare` finds the newest earlier result of the same mode (quick or full)
and prints, for each row both runs measured, the ratio to its baseline then
and now. A ratio is the row's median over its baseline's median in the same
run, so the load of the machine mostly cancels out; a row whose ratio grew
by more than `WORSE` is flagged. Nothing here ever fails a run: timings on a
shared 2-core machine are evidence, not verdicts.
"""

import glob
import json
import os
import subprocess

# A ratio this much higher than the previous run's is flagged.
WORSE = 1.25


def commit(root):
    """The checkout's commit (short), with `+dirty` when it has changes."""
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def previous(results, mode, exclude):
    """The newest stored result of `mode` other than `exclude`, or None."""
    for path in sorted(glob.glob(os.path.join(results, "bench-*.json")), reverse=True):
        if os.path.basename(path) == exclude:
            continue
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        if doc.get("machine", {}).get("mode") == mode:
            return path, doc
    return None


def ratios(doc):
    """{(comparison key, tool): ratio} of a stored run."""
    out = {}
    for c in doc.get("comparisons", []):
        for r in c.get("rows", []):
            if r.get("ratio") and not r.get("baseline"):
                out[(c.get("key"), r.get("tool"))] = (c.get("number"), r["ratio"])
    return out


def compare(run_json, results, this_file):
    """Lines comparing this run (a JSON document) with the previous one of its mode."""
    now = json.loads(run_json)
    mode = now["machine"].get("mode")
    prev = previous(results, mode, this_file)
    if prev is None:
        return [f"no earlier {mode} run in {results} to compare with"]
    path, old = prev
    before, after = ratios(old), ratios(now)
    both = [k for k in after if k in before]
    if not both:
        return [f"no row in common with {os.path.basename(path)}"]
    m = old["machine"]
    lines = [f"against the previous {mode} run ({os.path.basename(path)}, "
             f"commit {m.get('commit') or 'unknown'}, {m.get('date', '?')}): ratio then -> now"]
    flagged = 0
    for key in sorted(both, key=lambda k: (str(after[k][0]), k[1])):
        number, r_now = after[key]
        r_then = before[key][1]
        mark = ""
        if r_then > 0 and r_now / r_then > WORSE:
            mark = "  <- higher"
            flagged += 1
        lines.append(f"   {number}. {key[1]}: {r_then:.2f}x -> {r_now:.2f}x{mark}")
    lines.append(f"{flagged} row(s) more than {WORSE:.2f} times their previous ratio"
                 " (a hint to look, never a failure: the machine is shared)")
    return lines
